package pool

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
)

// Warm-up workload: rounds of WarmSandboxes allocations and releases, 48 at a time, on a
// scratch table. A fresh DynamoDB Local serves its first burst 1.4–1.6 s slower at p99
// while its JIT compiles the request paths (docs/benchmark.md); this workload runs those
// paths a few thousand times first. One round takes most of that off and the JIT goes on
// improving for a few more: the caller chooses (the local stack: LOCAL_WARM_ROUNDS).
const (
	WarmSandboxes    = 250
	warmWorkers      = 48 // at most what a local client connects (LocalMaxConns)
	warmRoundTimeout = 2 * time.Minute
)

// Warm runs the warm-up workload against DynamoDB Local on a scratch table, which it drops
// afterwards: the same requests an allocation burst makes (creates, candidate pages,
// claims, releases, history reads). The local stack calls it before it reports ready, so
// the first measured burst does not pay for the JIT. It is for DynamoDB Local
// only; it is bounded by count and by a timeout.
func Warm(ctx context.Context, db *dynamodb.Client, rounds int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(rounds)*warmRoundTimeout)
	defer cancel()
	var b [4]byte
	_, _ = rand.Read(b[:])
	table := fmt.Sprintf("warm-up-%x", b)
	if err := CreateTable(ctx, db, table); err != nil {
		return err
	}
	p := New(db, table, Options{})
	err := func() error {
		for round := range rounds {
			if err := warmRound(ctx, p, round); err != nil {
				return err
			}
		}
		return nil
	}()
	_, dropErr := db.DeleteTable(context.WithoutCancel(ctx), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("pool: warm-up: %w", err)
	}
	if dropErr != nil {
		return fmt.Errorf("pool: warm-up: drop %s: %w", table, dropErr)
	}
	return nil
}

func warmRound(ctx context.Context, p *Pool, round int) error {
	by := Actor{Kind: "job", Name: "warm-up", Reason: "warm-up"}
	err := warmEach(WarmSandboxes, func(i int) error {
		n := round*WarmSandboxes + i
		_, err := p.Create(ctx, Account{ID: fmt.Sprint(9000000 + n), Name: fmt.Sprintf("warm-%06d", n),
			ExternalID: fmt.Sprintf("identity/accounts/00000000-0000-4000-9000-%012d", n)}, by)
		return err
	})
	if err != nil {
		return err
	}
	return warmEach(WarmSandboxes, func(i int) error {
		student := fmt.Sprintf("warm-%d-%d", round, i)
		for shard := mrand.IntN(Shards); ; shard = (shard + 1) % Shards {
			page, err := p.Candidates(ctx, shard, "warm", 100)
			if err != nil {
				return err
			}
			if len(page) == 0 {
				continue
			}
			now := time.Now().Unix()
			_, err = p.Claim(ctx, page[mrand.IntN(len(page))], Claim{Student: student, IdempotencyKey: student,
				AllocatedAt: now, ExpiresAt: now + 3600}, by)
			if LostRace(err) {
				continue
			}
			if err != nil {
				return err
			}
			break
		}
		owner, _, err := p.OwnerRecord(ctx, Holder{Student: student}, student)
		if err != nil {
			return err
		}
		s, err := p.Get(ctx, owner.SandboxID)
		if err != nil {
			return err
		}
		if _, err := p.Release(ctx, s, Holder{Student: student}, by); err != nil {
			return err
		}
		_, err = p.History(ctx, s.ID)
		return err
	})
}

// warmEach runs fn(0..n-1) on warmWorkers goroutines and returns the first error.
func warmEach(n int, fn func(int) error) error {
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range warmWorkers {
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
