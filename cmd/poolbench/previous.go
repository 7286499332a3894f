package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// The allocation engine as it was before the page dealer (pkg/broker/dealer.go), kept as
// a benchmark row: each allocation reads the page of a random shard (the next shard when
// one is empty, each empty shard once), claims one random candidate of it and after a lost
// claim reads a fresh page. Without a dealer, concurrent allocations pick independently.
const (
	previousPage      = 100
	previousMaxClaims = 64
)

var (
	errPreviousNone = errors.New("previous: no sandbox free")
	errPreviousBusy = errors.New("previous: claim budget spent")
)

func previousAllocate(ctx context.Context, e *env, student, prefix string) error {
	by := pool.Actor{Kind: "student", Name: student, Reason: "allocate"}
	now := time.Now()
	claim := pool.Claim{Student: student, IdempotencyKey: student, AllocatedAt: now.Unix(), ExpiresAt: now.Add(48 * time.Hour).Unix()}
	var drained [pool.Shards]bool
	for range previousMaxClaims {
		page, err := previousCandidates(ctx, e, prefix, &drained)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return errPreviousNone
		}
		_, err = e.pool.Claim(ctx, page[rand.IntN(len(page))], claim, by)
		if err == nil {
			return nil
		}
		if !pool.LostRace(err) {
			return err
		}
	}
	return errPreviousBusy
}

func previousCandidates(ctx context.Context, e *env, prefix string, drained *[pool.Shards]bool) ([]pool.Sandbox, error) {
	start := rand.IntN(pool.Shards)
	for i := range pool.Shards {
		shard := (start + i) % pool.Shards
		if drained[shard] {
			continue
		}
		page, err := e.pool.Candidates(ctx, shard, prefix, previousPage)
		if err != nil || len(page) > 0 {
			return page, err
		}
		drained[shard] = true
	}
	return nil, nil
}
