package pool_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// A sandbox's life in the pool: sync creates it available, a claim allocates it to a
// student (sandbox and owner record in one transaction), and a second claim of the same
// sandbox loses the race: its condition on the version it read fails.
func ExamplePool_Claim() {
	ctx := context.Background()
	table := fmt.Sprintf("example-claim-%d", time.Now().UnixNano())
	if err := pool.CreateTable(ctx, pooltest.Client(), table); err != nil {
		fmt.Println(err)
		return
	}
	p := pool.New(pooltest.Client(), table, pool.Options{})
	by := pool.Actor{Kind: "job", Name: "sync"}
	s, err := p.Create(ctx, pool.Account{ID: "3000001", Name: "lab-0001", ExternalID: "ext-1"}, by)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Name, s.Status)

	now := time.Now()
	claim := pool.Claim{Student: "student-1", IdempotencyKey: "student-1", AllocatedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()}
	owner, err := p.Claim(ctx, s, claim, pool.Actor{Kind: "student", Name: "student-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(owner.SandboxID, "allocated to", owner.Student)

	claim.Student, claim.IdempotencyKey = "student-2", "student-2"
	_, err = p.Claim(ctx, s, claim, pool.Actor{Kind: "student", Name: "student-2"})
	fmt.Println("second claim lost the race:", pool.LostRace(err))
	// Output:
	// lab-0001 available
	// 3000001 allocated to student-1
	// second claim lost the race: true
}
