package auth_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/auth"
)

// hangingSecrets is the store's one Secrets Manager call, in memory: it answers value, or,
// while hang is set, blocks until the caller's context ends, as a read from a Secrets
// Manager that does not answer does. entered receives the remaining time of each hanging
// read's context (or -1 without a deadline) once the read is blocked.
type hangingSecrets struct {
	mu      sync.Mutex
	value   string
	hang    bool
	calls   atomic.Int64
	entered chan time.Duration
}

func newHangingSecrets(value string) *hangingSecrets {
	return &hangingSecrets{value: value, entered: make(chan time.Duration, 10)}
}

func (h *hangingSecrets) set(value string, hang bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.value, h.hang = value, hang
}

func (h *hangingSecrets) read(ctx context.Context, _ string) (string, error) {
	h.calls.Add(1)
	h.mu.Lock()
	value, hang := h.value, h.hang
	h.mu.Unlock()
	if !hang {
		return value, nil
	}
	left := time.Duration(-1)
	if deadline, ok := ctx.Deadline(); ok {
		left = time.Until(deadline)
	}
	h.entered <- left
	<-ctx.Done()
	return "", ctx.Err()
}

// TestSlowSecretsManagerKeepsServingTheLastGoodTokens: when a refresh hangs, the read is
// cut off by the store's own timeout (well below the function's) even though the caller's
// context has no deadline; requests during and after it get the last good tokens at once
// and start no read of their own until the retry is due.
func TestSlowSecretsManagerKeepsServingTheLastGoodTokens(t *testing.T) {
	sm := newHangingSecrets(secretWith([3]string{"instruqt", "track", trackPlain}))
	var logs bytes.Buffer // written by the reader before it answers on refreshed
	clk := testkit.NewClock(time.Unix(1_800_000_000, 0))
	store := auth.NewSecretStore(sm.read, testARN, auth.SecretStoreOptions{Refresh: 5 * time.Minute, Log: slog.New(slog.NewJSONHandler(&logs, nil)), Now: clk.Now})
	ctx := context.Background()
	if _, ok := auth.Match(store.Tokens(ctx), trackPlain); !ok {
		t.Fatal("the configured token is not accepted")
	}

	sm.set("", true)
	clk.Advance(6 * time.Minute)
	refreshed := make(chan []auth.Token)
	go func() { refreshed <- store.Tokens(ctx) }()
	if left := <-sm.entered; left < 0 || left > auth.SecretReadTimeout {
		t.Fatalf("the hanging read has %v left, want a deadline within %v", left, auth.SecretReadTimeout)
	}
	for i := range 5 {
		if _, ok := auth.Match(store.Tokens(ctx), trackPlain); !ok {
			t.Fatalf("request %d during the slow read was not served the last good tokens", i)
		}
	}
	if n := sm.calls.Load(); n != 2 {
		t.Fatalf("%d reads, want the first and the one hanging", n)
	}
	if _, ok := auth.Match(<-refreshed, trackPlain); !ok {
		t.Fatal("the request that read the secret did not fall back to the last good tokens")
	}
	if !strings.Contains(logs.String(), "cannot read the token secret") {
		t.Fatalf("the timed-out read is not logged: %s", logs.String())
	}

	// After the timed-out read, requests keep the last good tokens without a new read until
	// the retry is due; then a read that answers replaces them.
	store.Tokens(ctx)
	if n := sm.calls.Load(); n != 2 {
		t.Fatalf("a request right after the timed-out read read again (%d reads)", n)
	}
	sm.set(secretWith([3]string{"ops", "admin", adminPlain}), false)
	clk.Advance(11 * time.Second)
	if id, ok := auth.Match(store.Tokens(ctx), adminPlain); !ok || id.Scope != auth.Admin {
		t.Fatal("the store did not pick up the secret once Secrets Manager answered")
	}
}

// TestSlowFirstReadDeniesWithoutHanging: before any good read there is nothing to serve, so
// a request waits for the read in progress, but no longer than its own context; the reader
// gives up when its context ends, and the next read starts only after the retry wait.
func TestSlowFirstReadDeniesWithoutHanging(t *testing.T) {
	sm := newHangingSecrets("")
	sm.set("", true)
	var logs bytes.Buffer
	clk := testkit.NewClock(time.Unix(1_800_000_000, 0))
	store := auth.NewSecretStore(sm.read, testARN, auth.SecretStoreOptions{Refresh: 5 * time.Minute, Log: slog.New(slog.NewJSONHandler(&logs, nil)), Now: clk.Now})

	readerCtx, endReader := context.WithCancel(context.Background())
	first := make(chan []auth.Token)
	go func() { first <- store.Tokens(readerCtx) }()
	<-sm.entered
	impatient, cancel := context.WithCancel(context.Background())
	cancel()
	if tokens := store.Tokens(impatient); len(tokens) != 0 || sm.calls.Load() != 1 {
		t.Fatalf("a waiting request got %d tokens after %d reads", len(tokens), sm.calls.Load())
	}
	endReader()
	if tokens := <-first; len(tokens) != 0 {
		t.Fatalf("the abandoned read served %d tokens", len(tokens))
	}
	sm.set(secretWith([3]string{"instruqt", "track", trackPlain}), false)
	if tokens := store.Tokens(context.Background()); len(tokens) != 0 || sm.calls.Load() != 1 {
		t.Fatalf("a read started before the retry wait (%d reads)", sm.calls.Load())
	}
	clk.Advance(11 * time.Second)
	if _, ok := auth.Match(store.Tokens(context.Background()), trackPlain); !ok {
		t.Fatal("the store did not recover")
	}
}
