package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/api/apitest"
	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// allocations runs allocations of students on the stack at once, and returns their answers.
func allocations(t *testing.T, s *Stack, students ...string) []answer {
	t.Helper()
	c := client{t, s.URL}
	out := make([]answer, len(students))
	var wg sync.WaitGroup
	for i, student := range students {
		wg.Go(func() { out[i] = c.do("POST", "/v1/allocate", track(s.TrackToken, student), nil) })
	}
	wg.Wait()
	return out
}

func sandboxID(t *testing.T, a answer) string {
	t.Helper()
	var body struct {
		SandboxID string `json:"sandbox_id"`
	}
	if err := json.Unmarshal(a.body, &body); err != nil || body.SandboxID == "" {
		t.Fatalf("no sandbox in %d %s", a.status, a.body)
	}
	return body.SandboxID
}

// holdFirst makes the first invocation of function wait, once an instance has taken it,
// until release is closed; entered closes when it waits. Every invocation's instance is
// recorded in served.
func holdFirst(s *Stack, function string) (entered, release chan struct{}, served func() []int) {
	entered, release = make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var instances []int
	onInvoke(s.lambda, func(name string, instance int) {
		if name != function {
			return
		}
		mu.Lock()
		instances = append(instances, instance)
		first := len(instances) == 1
		mu.Unlock()
		if first {
			close(entered)
			<-release
		}
	})
	return entered, release, func() []int { mu.Lock(); defer mu.Unlock(); return slices.Clone(instances) }
}

// Two allocations in flight at once are served by two instances of the allocate function,
// each paying its init (one "cold start" line with init_ms each); the next two, one after
// the other, reuse the instance released last. The process model serves the same pair with
// its one shared instance.
func TestConcurrentAllocationsGetTheirOwnInstances(t *testing.T) {
	for _, model := range []string{config.ExecutionInstances, config.ExecutionProcess} {
		t.Run(model, func(t *testing.T) {
			s, banner, logs := startStack(t, map[string]string{"LOCAL_EXECUTION_MODEL": model, "JOB_INTERVAL_SCALE": "1"})
			if !strings.Contains(banner, map[string]string{config.ExecutionInstances: "Lambda's instance model",
				config.ExecutionProcess: "LOCAL_EXECUTION_MODEL=process"}[model]) || s.ExecutionModel != model {
				t.Fatalf("the banner does not name the execution model %s:\n%s", model, banner)
			}
			entered, release, served := holdFirst(s, "allocate")
			first := make(chan answer, 1)
			go func() { first <- allocations(t, s, "student-1")[0] }()
			<-entered
			second := allocations(t, s, "student-2")[0]
			close(release)
			a, b := <-first, second
			wantStatus(t, "the held allocation", a, http.StatusCreated, "")
			wantStatus(t, "the allocation beside it", b, http.StatusCreated, "")
			if sandboxID(t, a) == sandboxID(t, b) {
				t.Fatal("two students got one sandbox")
			}
			for _, student := range []string{"student-3", "student-4"} {
				wantStatus(t, "a sequential allocation", allocations(t, s, student)[0], http.StatusCreated, "")
			}

			st := statsOf(t, s.lambda, "allocate")
			switch model {
			case config.ExecutionInstances:
				// The held one ran on instance 1 and was released last: the sequential pair
				// reuses it.
				if got := served(); !slices.Equal(got, []int{1, 2, 1, 1}) || st.ColdStarts != 2 || st.Invocations != 4 || st.Idle != 2 {
					t.Fatalf("instances %v, stats %+v: want [1 2 1 1], 2 cold starts", got, st)
				}
			case config.ExecutionProcess:
				if got := served(); !slices.Equal(got, []int{1, 1, 1, 1}) || st.ColdStarts != 1 || st.Invocations != 4 {
					t.Fatalf("instances %v, stats %+v: want one shared instance", got, st)
				}
			}
			var coldLines int
			for _, line := range logs.JSONLines(t) {
				if line["msg"] == "cold start" && line["function"] == "allocate" {
					if _, ok := line["init_ms"].(float64); !ok {
						t.Fatalf("a cold start line without init_ms: %v", line)
					}
					coldLines++
				}
			}
			if coldLines != st.ColdStarts {
				t.Fatalf("%d cold start lines for %d cold starts", coldLines, st.ColdStarts)
			}
			checkInvariants(t, s)
		})
	}
}

// An invocation Lambda throttles never reaches the function: the gateway answers what API
// Gateway answers when the Lambda API rejects the invocation, 500 in the envelope of the
// DEFAULT_5XX gateway response. A reserved concurrency of 0 throttles every invocation.
func TestThrottledRouteGetsAPIGatewaysAnswer(t *testing.T) {
	s, banner, logs := startStack(t, map[string]string{"LOCAL_RESERVED_CONCURRENCY": "allocate=0", "JOB_INTERVAL_SCALE": "1"})
	if !strings.Contains(banner, "0 of it reserved (allocate=0)") {
		t.Fatalf("the banner does not show the reservations:\n%s", banner)
	}
	a := allocations(t, s, "student-1")[0]
	wantStatus(t, "a throttled allocation", a, http.StatusInternalServerError, api.CodeInternal)
	if a.header.Get("X-Request-ID") == "" || a.header.Get("Retry-After") != "" {
		t.Fatalf("headers of the throttled answer: %v", a.header)
	}
	if st := statsOf(t, s.lambda, "allocate"); st.Throttles != 1 || st.Invocations != 0 || st.ColdStarts != 0 {
		t.Fatalf("allocate: %+v", st)
	}
	if !strings.Contains(logs.String(), `"msg":"gateway: Lambda throttled the function"`) ||
		!strings.Contains(logs.String(), "ReservedFunctionConcurrentInvocationLimitExceeded") {
		t.Fatalf("no log line of the throttle:\n%s", logs.String())
	}
	// The other functions are not affected.
	wantStatus(t, "get", client{t, s.URL}.do("GET", "/v1/sandboxes/3000001", track(s.TrackToken, "student-1"), nil), http.StatusForbidden, api.CodeNotSandboxOwner)
}

// The stack refuses at start what Lambda refuses: reservations that leave fewer than 100
// unreserved executions, and names no function it runs.
func TestReservationsAreCheckedAtStart(t *testing.T) {
	for env, want := range map[string]string{
		"LOCAL_RESERVED_CONCURRENCY=allocate=901":          "leaving 99 unreserved",
		"LOCAL_RESERVED_CONCURRENCY=allocate=950":          "take 950 of LOCAL_LAMBDA_CONCURRENCY 1000",
		"LOCAL_RESERVED_CONCURRENCY=usage-plans=1":         "usage-plans is not a function of the local stack",
		"LOCAL_RESERVED_CONCURRENCY=allocate":              "LOCAL_RESERVED_CONCURRENCY",
		"LOCAL_EXECUTION_MODEL=threads":                    "LOCAL_EXECUTION_MODEL",
		"LOCAL_LAMBDA_IDLE_SECONDS=0":                      "LOCAL_LAMBDA_IDLE_SECONDS",
		"LOCAL_RESERVED_CONCURRENCY=allocate=1,allocate=2": "names allocate twice",
	} {
		name, value, _ := strings.Cut(env, "=")
		_, err := Start(t.Context(), testkit.Env(map[string]string{"PORT": "0", name: value}), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", env, err, want)
		}
	}
}

// The morning rush through the instance model: 500 students at once, each on its own
// connection, against 500 sandboxes. Every one gets a sandbox of its own, the invariants
// hold, and the test reports the cold starts the burst caused and its latency (no timed
// assertion). A 503 is retried as clients retry it (rush); anything else — a 409 at this
// exact fit, a 5xx other than that 503, a sandbox twice — fails the test; the first
// attempts' answers are reported.
func TestFiveHundredStudentBurstThroughInstances(t *testing.T) {
	// The SDK parses an AWS_CA_BUNDLE at every client's creation (here ~25 ms, each cold
	// start); a Lambda environment has none, and DynamoDB Local speaks plain HTTP.
	t.Setenv("AWS_CA_BUNDLE", "")
	const students = 500
	s, _, _ := startStack(t, map[string]string{"SEED_SANDBOXES": fmt.Sprint(students), "SEED_PREFIXES": "lab",
		"JOB_INTERVAL_SCALE": "1", "LOG_LEVEL": "warn"})
	arrivals := make([]arrival, students)
	for i := range arrivals {
		arrivals[i] = arrival{student: fmt.Sprintf("burst-student-%d", i)}
	}
	out := rush(t, s, arrivals, nil)
	final := finalStatuses(out)
	if got := final[http.StatusCreated] + final[http.StatusOK]; got != students || distinctSandboxes(t, out) != students {
		t.Fatalf("final answers by status %v (first attempts %v); want every student served, each its own sandbox", final, firstStatuses(out))
	}
	checkInvariants(t, s)
	reportRush(t, s, out)
}

// arrival is one student of a rush, allocating with the prefix "lab" for lab (the
// X-Instruqt-Track-ID the Instruqt scripts send; "" sends none).
type arrival struct{ student, lab string }

// outcome is how one student of a rush fared: the first attempt's status and latency, the
// last answer's status and error code, the sandbox it got and how many 503s it retried.
type outcome struct {
	first, final int
	latency      time.Duration
	code         string
	sandbox      string
	retries      int
}

// rush sends every arrival's allocation at once, each on a fresh connection, released on
// one barrier, and calls answered (when not nil) with each student's index as it has its
// last answer.
//
// A student retries a 503 SERVICE_UNAVAILABLE after its Retry-After, as clients do
// (docs/api.md): DynamoDB Local serves the burst's requests in one lane, and on a loaded
// machine some wait past the broker's deadline per call, which DynamoDB in AWS does not
// make them do (docs/architecture.md §8). A retry whose claim had committed after all
// replays it (200). Any other answer is the student's last.
func rush(t *testing.T, s *Stack, arrivals []arrival, answered func(i int)) []outcome {
	t.Helper()
	const attempts = 10
	out := make([]outcome, len(arrivals))
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	ready.Add(len(arrivals))
	for i, a := range arrivals {
		wg.Go(func() {
			o := &out[i]
			ready.Done()
			<-start
			if answered != nil {
				defer answered(i)
			}
			began := time.Now()
			for attempt := range attempts {
				status, header, body, err := allocateOnce(s, a)
				if err != nil {
					t.Errorf("%s: %v", a.student, err)
					return
				}
				if attempt == 0 {
					o.first, o.latency = status, time.Since(began)
				}
				o.final = status
				if status == http.StatusCreated || status == http.StatusOK {
					var got struct {
						SandboxID string `json:"sandbox_id"`
					}
					if err := json.Unmarshal(body, &got); err != nil || got.SandboxID == "" {
						t.Errorf("%s: no sandbox in %d %s", a.student, status, body)
					}
					o.sandbox = got.SandboxID
					break
				}
				apitest.CheckError(t, status, header, body)
				var envelope wire.ErrorEnvelope
				_ = json.Unmarshal(body, &envelope) // CheckError reported a body that is no envelope
				if o.code = envelope.Detail.Code; status != http.StatusServiceUnavailable || o.code != api.CodeServiceUnavailable {
					break
				}
				o.retries++
				after, _ := strconv.Atoi(header.Get("Retry-After"))
				time.Sleep(time.Duration(after) * time.Second)
			}
		})
	}
	ready.Wait()
	close(start)
	wg.Wait()
	return out
}

// allocateOnce is one attempt of a's allocation, on a connection of its own.
func allocateOnce(s *Stack, a arrival) (int, http.Header, []byte, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Minute}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+"/v1/allocate", nil)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header = track(s.TrackToken, a.student)
	req.Header.Set(api.HeaderNamePrefix, "lab")
	if a.lab != "" {
		req.Header.Set(api.HeaderTrackName, a.lab)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

func firstStatuses(out []outcome) map[int]int {
	by := map[int]int{}
	for _, o := range out {
		by[o.first]++
	}
	return by
}

func finalStatuses(out []outcome) map[int]int {
	by := map[int]int{}
	for _, o := range out {
		by[o.final]++
	}
	return by
}

// distinctSandboxes counts the sandboxes of a rush, failing the test when one was given
// to two students.
func distinctSandboxes(t *testing.T, out []outcome) int {
	t.Helper()
	seen := map[string]int{}
	for i, o := range out {
		if o.sandbox == "" {
			continue
		}
		if j, dup := seen[o.sandbox]; dup {
			t.Fatalf("sandbox %s given to students %d and %d", o.sandbox, j, i)
		}
		seen[o.sandbox] = i
	}
	return len(seen)
}

// reportRush logs a rush's first answers, latency and retries, and the cold starts of
// every function (not asserted: they depend on the machine).
func reportRush(t *testing.T, s *Stack, out []outcome) {
	t.Helper()
	latency := make([]time.Duration, 0, len(out))
	retries := 0
	for _, o := range out {
		latency = append(latency, o.latency)
		retries += o.retries
	}
	slices.Sort(latency)
	t.Logf("%d students at once through the instance model: first attempts %v (p50 %s, p99 %s), %d retries after a 503, final answers %v (not asserted: latency, first-attempt success)",
		len(out), firstStatuses(out), latency[len(out)/2].Round(time.Millisecond), latency[len(out)*99/100].Round(time.Millisecond), retries, finalStatuses(out))
	for _, f := range s.Functions() {
		if f.ColdStarts > 0 {
			t.Logf("%-12s %4d invocations, %4d cold starts, init %s in all (%s each), %d throttles", f.Name, f.Invocations, f.ColdStarts,
				f.InitTime.Round(time.Millisecond), (f.InitTime / time.Duration(f.ColdStarts)).Round(10*time.Microsecond), f.Throttles)
		}
	}
}

// checkInvariants runs the invariant checker on the stack's table.
func checkInvariants(t *testing.T, s *Stack) {
	t.Helper()
	p := pool.New(pooltest.Client(), s.table, pool.Options{})
	if _, err := p.CheckInvariants(context.Background()); err != nil {
		t.Fatal(err)
	}
}
