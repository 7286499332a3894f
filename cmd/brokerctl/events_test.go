package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/events"
)

// TestEventsPrintsAndFollowsTheEventsFile: brokerctl events reads the local stack's events
// file without the API (no URL, no token), one line per event, filtered by type or
// sandbox; --follow prints what is appended until it is stopped; --json prints the lines
// as they are.
func TestEventsPrintsAndFollowsTheEventsFile(t *testing.T) {
	ctx := context.Background()
	file := t.TempDir() + "/events.jsonl"
	sink, err := events.OpenFileSink(file)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ev := func(ty events.Type, id string) events.Event {
		return events.Event{Version: events.Version, ID: id + string(ty), Type: ty, Sequence: 1, Time: at,
			Sandbox: &events.Sandbox{ID: id, Name: "lab-" + id, Prefix: "lab"}, Student: "student-9", Lab: "dns-lab",
			Actor: events.Actor{Kind: "student"}}
	}
	for _, err := range sink.Publish(ctx, []events.Event{ev(events.Added, "1"), ev(events.Allocated, "1"), ev(events.Added, "2")}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"EVENTS_FILE": file}
	var out, errOut testkit.Buffer
	if code := run(ctx, []string{"events"}, getenv(env), &out, &errOut); code != exitOK || strings.Count(out.String(), "\n") != 3 ||
		!strings.Contains(out.String(), "sandbox.allocated  1 lab-1  student=student-9  lab=dns-lab  by=student") {
		t.Fatalf("events: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	out = testkit.Buffer{}
	if code := run(ctx, []string{"events", "--type", "added", "--sandbox", "2", "--json"}, getenv(env), &out, &errOut); code != exitOK ||
		strings.Count(out.String(), "\n") != 1 || !strings.Contains(out.String(), `"detail-type":"sandbox.added"`) {
		t.Fatalf("events --type added --sandbox 2 --json: exit %d\n%s", code, out.String())
	}

	follow, stop := context.WithCancel(ctx)
	var followed testkit.Buffer
	done := make(chan int)
	go func() {
		done <- run(follow, []string{"events", "--follow", "--type", "released"}, getenv(env), &followed, &errOut)
	}()
	sink.Publish(ctx, []events.Event{ev(events.Released, "1")})
	testkit.Eventually(t, "the appended event followed", func() bool { return strings.Contains(followed.String(), "sandbox.released") })
	stop()
	if code := <-done; code != exitOK || strings.Count(followed.String(), "\n") != 1 {
		t.Fatalf("events --follow: exit %d\n%s%s", code, followed.String(), errOut.String())
	}

	if code := run(ctx, []string{"events", "--file", file + ".missing"}, getenv(nil), &out, &errOut); code != exitError ||
		!strings.Contains(errOut.String(), "its banner") {
		t.Fatalf("a missing file: exit %d, %s", code, errOut.String())
	}
}

// TestReplayEventsAsksTheAdminAPI: replay-events calls the replay route of the stack,
// whose dead-letter queue is empty.
func TestReplayEventsAsksTheAdminAPI(t *testing.T) {
	s := startStack(t)
	ctl(t, s, nil, "replay-events").want(t, exitOK, "0 dead letters taken: 0 events published, 0 letters deleted, 0 kept")
}
