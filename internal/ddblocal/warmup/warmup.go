// Package warmup warms a fresh DynamoDB Local's JVM before the local stack reports ready
// (a test binary's DynamoDB Local is never warmed: pkg/pool/pooltest). It drives the
// pool's own requests, so it imports pkg/pool, which imports internal/ddblocal: hence a
// package of its own below ddblocal.
package warmup

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// The workload: rounds of roundSize allocations and releases, ddblocal.MaxConns at a time,
// on a scratch table. A fresh DynamoDB Local serves its first burst 1.4–1.6 s slower at p99
// while its JIT compiles the request paths (docs/benchmark.md); this workload runs those
// paths a few thousand times first. One round takes most of that off and the JIT goes on
// improving for a few more: the caller chooses (the local stack: LOCAL_WARM_ROUNDS).
const (
	roundSize    = 250
	workers      = ddblocal.MaxConns
	roundTimeout = 2 * time.Minute
)

// Run runs rounds of the workload against the DynamoDB Local db talks to, on a scratch
// table it drops afterwards: the same requests an allocation burst makes (creates,
// candidate pages, claims, releases, history reads). The local stack calls it before it
// reports ready, so the first measured burst does not pay for the JIT. It is for
// DynamoDB Local only; it is bounded by count and by two minutes a round. It returns the
// first error of a round, or the drop's, and says how many rounds ran when its time is
// spent first (a busy machine's JVM is merely slower: the local stack then serves, less
// warm).
func Run(parent context.Context, db *dynamodb.Client, rounds int) error {
	ctx, cancel := context.WithTimeout(parent, time.Duration(rounds)*roundTimeout)
	defer cancel()
	var b [4]byte
	_, _ = rand.Read(b[:])
	table := fmt.Sprintf("warm-up-%x", b)
	// Without a stream: DynamoDB Local would make every write to a table with one created
	// later (the stack's) scan the warm-up's stream records (pool.CreateTableWithoutStream).
	if err := pool.CreateTableWithoutStream(ctx, db, table); err != nil {
		return err
	}
	p := pool.New(db, table, pool.Options{})
	done := 0
	err := func() error {
		for ; done < rounds; done++ {
			if err := runRound(ctx, p, done); err != nil {
				return err
			}
		}
		return nil
	}()
	_, dropErr := db.DeleteTable(context.WithoutCancel(ctx), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	if err != nil && ctx.Err() == context.DeadlineExceeded && parent.Err() == nil {
		err = fmt.Errorf("time spent after %d of %d rounds in %s", done, rounds, time.Duration(rounds)*roundTimeout)
	}
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if dropErr != nil {
		return fmt.Errorf("warm-up: drop %s: %w", table, dropErr)
	}
	return nil
}

func runRound(ctx context.Context, p *pool.Pool, round int) error {
	by := pool.Actor{Kind: "job", Name: "warm-up", Reason: "warm-up"}
	err := each(roundSize, func(i int) error {
		n := round*roundSize + i
		_, err := p.Create(ctx, pool.Account{ID: fmt.Sprint(9000000 + n), Name: fmt.Sprintf("warm-%06d", n),
			ExternalID: fmt.Sprintf("identity/accounts/00000000-0000-4000-9000-%012d", n)}, by)
		return err
	})
	if err != nil {
		return err
	}
	return each(roundSize, func(i int) error {
		student := fmt.Sprintf("warm-%d-%d", round, i)
		for shard := mrand.IntN(pool.Shards); ; shard = (shard + 1) % pool.Shards {
			page, err := p.Candidates(ctx, shard, "warm", 100)
			if err != nil {
				return err
			}
			if len(page) == 0 {
				continue
			}
			now := time.Now().Unix()
			_, err = p.Claim(ctx, page[mrand.IntN(len(page))], pool.Claim{Student: student, IdempotencyKey: student,
				AllocatedAt: now, ExpiresAt: now + 3600}, by)
			if pool.LostRace(err) {
				continue
			}
			if err != nil {
				return err
			}
			break
		}
		owner, _, err := p.OwnerRecord(ctx, pool.Holder{Student: student}, student)
		if err != nil {
			return err
		}
		s, err := p.Get(ctx, owner.SandboxID)
		if err != nil {
			return err
		}
		if _, err := p.Release(ctx, s, pool.Holder{Student: student}, by); err != nil {
			return err
		}
		_, err = p.History(ctx, s.ID)
		return err
	})
}

// each runs fn(0..n-1) on workers goroutines and returns every error.
func each(n int, fn func(int) error) error {
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}
