package broker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// Allocate hands a student a free sandbox; the same student asking again gets the same
// one back (a replay, Created false), and once the pool is empty another student gets
// ErrNoSandbox.
func ExampleBroker_Allocate() {
	ctx := context.Background()
	table := fmt.Sprintf("example-allocate-%d", time.Now().UnixNano())
	if err := pool.CreateTable(ctx, pooltest.Client(), table); err != nil {
		fmt.Println(err)
		return
	}
	p := pool.New(pooltest.Client(), table, pool.Options{})
	if _, err := p.Create(ctx, pool.Account{ID: "3000001", Name: "lab-0001", ExternalID: "ext-1"}, pool.Actor{Kind: "job", Name: "sync"}); err != nil {
		fmt.Println(err)
		return
	}
	b := broker.New(p, config.Pool{LabDuration: 4 * time.Hour, Grace: 30 * time.Minute})

	first, err := b.Allocate(ctx, broker.AllocateRequest{Student: "student-1"})
	fmt.Println(first.Name, first.Created, err)
	again, err := b.Allocate(ctx, broker.AllocateRequest{Student: "student-1"})
	fmt.Println(again.Name, again.Created, err)
	_, err = b.Allocate(ctx, broker.AllocateRequest{Student: "student-2"})
	fmt.Println(errors.Is(err, broker.ErrNoSandbox))
	// Output:
	// lab-0001 true <nil>
	// lab-0001 false <nil>
	// true
}
