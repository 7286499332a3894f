package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/sandbox-broker/broker/pkg/auth"
)

// UsagePlans is what the usage-plans job needs: the tokens secret, read afresh each run,
// and the reconciler that applies its clients to API Gateway (pkg/usageplans, which this
// package does not import, so the route functions do not link the API Gateway client).
type UsagePlans struct {
	// ReadTokens returns the tokens secret's document.
	ReadTokens func(ctx context.Context) (string, error)
	Reconciler UsagePlanReconciler
}

// UsagePlanReconciler makes API Gateway hold exactly the clients of tokens. It returns how
// many clients had each outcome (also when it fails part way) and notes on the tokens; its
// error is API Gateway's.
type UsagePlanReconciler interface {
	Reconcile(ctx context.Context, tokens []auth.Token) (counts map[string]int, notes []string, err error)
}

// reconcileUsagePlans reads the tokens secret as the authorizer does (entries it skips are
// skipped here too, and reported) and reconciles API Gateway with its clients. A secret
// that is not a token document fails the run before API Gateway is touched, so a broken
// edit never removes every client's plan; a refusal by API Gateway fails it with
// AlarmUsagePlansFailed.
func (r *Runner) reconcileUsagePlans(ctx context.Context, run *runState) error {
	if r.usagePlans.ReadTokens == nil || r.usagePlans.Reconciler == nil {
		return errors.New("job usage-plans needs the tokens secret and API Gateway, and this runner has neither")
	}
	work, cancel := run.workContext(ctx)
	defer cancel()
	raw, err := r.usagePlans.ReadTokens(work)
	if err != nil {
		return fmt.Errorf("read the tokens secret: %w", err)
	}
	tokens, problems, err := auth.ParseSecret([]byte(raw))
	if err != nil {
		return fmt.Errorf("the tokens secret: %w", err)
	}
	for _, p := range problems {
		run.addError(fmt.Errorf("tokens secret: %s (skipped, as the authorizer skips it)", p))
	}
	counts, notes, err := r.usagePlans.Reconciler.Reconcile(work, tokens)
	for outcome, n := range counts {
		run.count(outcome, n)
	}
	for _, n := range notes {
		run.addError(errors.New(n))
	}
	if err != nil {
		run.alarm(AlarmUsagePlansFailed)
		return fmt.Errorf("API Gateway: %w", err)
	}
	return nil
}
