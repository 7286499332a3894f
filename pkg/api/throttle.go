package api

// Throttle is an API Gateway throttle: a token bucket that refills at Rate requests per
// second and holds at most Burst.
type Throttle struct {
	Rate  int
	Burst int
}

// StageThrottle is the stage's default throttle, shared by every route and caller. The
// CDK stack sets it on the stage unless the context values apiThrottleRate and
// apiThrottleBurst override it, and the local gateway emulator enforces it, so the two
// cannot differ. It is sized (docs/operations.md, "Throttling") to let a morning rush of
// 1 000 allocations within 5 s through without a single 429: the burst alone holds them,
// and the rate refills it within two seconds. Abuse is bounded per client (usage plans),
// not by this global limit.
var StageThrottle = Throttle{Rate: 1000, Burst: 2000}
