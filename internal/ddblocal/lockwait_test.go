package ddblocal_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// refusals records every 500 answer of DynamoDB Local on its way to the client.
type refusals struct {
	next aws.HTTPClient

	mu     sync.Mutex
	bodies [][]byte
}

func (r *refusals) Do(req *http.Request) (*http.Response, error) {
	resp, err := r.next.Do(req)
	if err != nil || resp.StatusCode != http.StatusInternalServerError {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	r.mu.Unlock()
	return resp, err
}

func (r *refusals) seen() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

// lockWait is longer than DynamoDB Local waits for a table's lock (10 s).
const lockWait = 11 * time.Second

// TestDynamoDBLocalsLockWaitIsSentAgain makes a real DynamoDB Local answer its lock-wait
// timeout, as a loaded machine does: writers keep a queue of requests waiting for the
// table's lock, and the JVM is frozen for longer than the wait, so that the requests
// queued at the freeze have waited too long when it thaws. Every 500 it answers must be
// the answer IsLockTimeout recognises, and every write of a client of pool.NewClient must
// succeed all the same, with a single attempt of the SDK: sent again under it.
func TestDynamoDBLocalsLockWaitIsSentAgain(t *testing.T) {
	ctx := testkit.Patience(t)
	srv, err := ddblocal.Start(ctx, ddblocal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	recorded := &refusals{next: ddblocal.HTTPClient(srv.Endpoint)}
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: srv.Endpoint, Region: "us-east-1", HTTPClient: recorded})
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.CreateTableWithoutStream(ctx, db, "lock-wait"); err != nil {
		t.Fatal(err)
	}
	// One attempt of the SDK per write: the sends under it alone must carry it through.
	p := pool.New(dynamodb.New(db.Options(), func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }), "lock-wait", pool.Options{})

	const writers = 24
	var (
		written atomic.Int64
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		errs    = make(chan error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := w*1_000_000 + i
				_, err := p.Create(ctx, pool.Account{ID: fmt.Sprint(5_000_000_000 + n), Name: fmt.Sprintf("lock-%08d", n),
					ExternalID: fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", n)}, pool.Actor{Kind: "job", Name: "sync"})
				if err != nil {
					errs <- err
					return
				}
				written.Add(1)
			}
		})
	}
	// Each round: the writers' queue builds up, the JVM freezes past the lock's wait and
	// thaws, and the queued writes come back; until DynamoDB Local has refused one.
	frozen := false
	t.Cleanup(func() {
		if frozen {
			_ = syscall.Kill(srv.PID(), syscall.SIGCONT)
		}
	})
	for rounds := 1; len(recorded.seen()) == 0; rounds++ {
		before := written.Load()
		testkit.Eventually(t, "writes before the freeze", func() bool { return written.Load() >= before+2*writers || len(errs) > 0 })
		if err := syscall.Kill(srv.PID(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		frozen = true
		time.Sleep(lockWait)
		if err := syscall.Kill(srv.PID(), syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		frozen = false
		thawed := written.Load()
		testkit.Eventually(t, "writes after the thaw", func() bool { return written.Load() >= thawed+2*writers || len(errs) > 0 })
		t.Logf("round %d: %d writes, %d refused", rounds, written.Load(), len(recorded.seen()))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a write failed: %v", err)
	}
	for _, body := range recorded.seen() {
		if !ddblocal.IsLockTimeout(http.StatusInternalServerError, body) {
			t.Errorf("DynamoDB Local answered 500 with what IsLockTimeout does not recognise: %s", body)
		}
	}
	t.Logf("DynamoDB Local's lock-wait timeout, sent again: %s", recorded.seen()[0])
	if _, err := p.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}
