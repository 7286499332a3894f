package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// The dealer never deals one candidate twice from one page, and never deals a candidate
// while another allocation of the process holds it unsettled, whatever the claims answer
// and whichever of two overlapping prefixes the allocations ask for.
// Nothing is claimed here, so a "won" candidate stays listed, as behind a lagging index.
func TestDealerDealsEachCandidateOncePerPageAndNeverToTwoAtOnce(t *testing.T) {
	ctx := context.Background()
	p := pooltest.New(t)
	var wg sync.WaitGroup
	for i := range 150 {
		wg.Go(func() {
			if _, err := p.Create(ctx, pool.Account{ID: fmt.Sprint(5000000 + i), Name: fmt.Sprintf("lab-%05d", i),
				ExternalID: fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", i)}, pool.Actor{Kind: "job", Name: "sync"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	d := newDealer(p)
	var mu sync.Mutex
	held := map[string]bool{}
	fromPage := map[*page]map[string]bool{}
	deals := 0
	for range 32 {
		wg.Go(func() {
			for range 40 {
				// Two prefixes whose pages overlap: "lab-000" lists 100 of the 150.
				s := d.session([]string{"", "lab-000"}[rand.IntN(2)], generalShards)
				c, found, err := s.next(ctx)
				if err != nil || !found {
					t.Errorf("next: found %v, %v", found, err)
					s.close()
					return
				}
				mu.Lock()
				deals++
				if held[c.ID] {
					t.Errorf("%s dealt while another allocation holds it", c.ID)
				}
				held[c.ID] = true
				if fromPage[c.from] == nil {
					fromPage[c.from] = map[string]bool{}
				}
				if fromPage[c.from][c.ID] {
					t.Errorf("%s dealt twice from one page", c.ID)
				}
				fromPage[c.from][c.ID] = true
				mu.Unlock()
				// Hold it for a real request, as a claim would, so holds overlap.
				if _, err := p.Get(ctx, c.ID); err != nil {
					t.Error(err)
				}
				o := outcome(rand.IntN(3))
				mu.Lock()
				delete(held, c.ID)
				mu.Unlock()
				s.settle(c, o)
				s.close()
			}
		})
	}
	wg.Wait()
	if deals != 32*40 || len(fromPage) < 2 {
		t.Fatalf("%d deals from %d pages: the hammer did not run through several pages", deals, len(fromPage))
	}
	pooltest.Check(t, p)
}
