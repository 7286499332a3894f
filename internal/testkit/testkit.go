package testkit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// Clock is a settable clock: code under test reads Now, the test moves it with Advance,
// so time boundaries are tested without sleeping.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// NewMonotonicClock starts a clock at the current time, with the monotonic clock reading
// time.Now gives it, so that Thaw can hold that reading while the wall clock moves.
func NewMonotonicClock() *Clock { return &Clock{t: time.Now()} }

// Thaw moves the wall clock by d and leaves the monotonic reading where it was: what code
// in a Lambda environment sees after the environment was frozen for d on a host whose
// monotonic clock stood still. Comparisons of two readings that both carry a monotonic
// reading (Before, After, Sub, time.Since) then see no time pass; only the wall clock
// (t.Round(0)) does. It needs a clock from NewMonotonicClock.
func (c *Clock) Thaw(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	thawed := c.t.Add(d)
	// No exported API gives a time a monotonic reading apart from its wall clock, as a
	// freeze does: the monotonic reading is written back into the time's fields, and the
	// result checked, so that a time.Time of another shape fails here loudly.
	(*timeFields)(unsafe.Pointer(&thawed)).ext = (*timeFields)(unsafe.Pointer(&c.t)).ext
	if thawed.Sub(c.t) != 0 || thawed.Round(0).Sub(c.t.Round(0)) != d {
		panic("testkit: Thaw needs a clock with a monotonic reading (NewMonotonicClock) and a time.Time of the shape it knows")
	}
	c.t = thawed
}

// ClockJump is a move of the clock under state that outlives a Lambda invocation (a
// breaker's pause, a cache), which that state must take for its time having passed.
type ClockJump struct {
	Name string
	Move func(*Clock)
}

// ClockJumps are a freeze of an hour on a host whose monotonic clock stands still (Thaw)
// and the wall clock stepped back an hour. They need a clock from NewMonotonicClock.
func ClockJumps() []ClockJump {
	return []ClockJump{
		{"frozen for an hour", func(c *Clock) { c.Thaw(time.Hour) }},
		{"stepped back an hour", func(c *Clock) { c.Advance(-time.Hour) }},
	}
}

// timeFields mirrors the fields of a time.Time: when wall has its top bit set, ext is the
// monotonic clock reading.
type timeFields struct {
	wall uint64
	ext  int64
	loc  *time.Location
}

// Buffer collects output written from many goroutines (a logger, EMF metrics).
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// JSONLines decodes every line written so far, failing the test on one that is not JSON.
func (b *Buffer) JSONLines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader([]byte(b.String())))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// Env is an environment made of a map, in the form config.Env and the loaders take.
func Env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
