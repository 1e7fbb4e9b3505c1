package limit

import (
	"context"
	"fmt"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// FailureCounter is the store's counting, read, written and reset.
type FailureCounter interface {
	Counter
	Count(ctx context.Context, key string) (ticket.Count, error)
	Reset(ctx context.Context, key string) error
}

// Failures limits failed attempts at a secret (a link, a client secret, an
// authorization code): Check before an attempt refuses a subject with Max
// failures in the window, without trying the secret, so that guessing stays
// as slow as the rule says and costs no hashing; Fail counts one failure.
// Successes are not counted. The zero Rule limits nothing.
type Failures struct {
	Rule  Rule
	Store FailureCounter
	// Name names the rule in keys and errors, such as "failures_per_ip".
	Name string
}

// Check returns an *ExceededError when subject has used up its failures,
// and the store's error when it cannot tell: the caller must then refuse.
func (f Failures) Check(ctx context.Context, subject string) error {
	if f.Rule.Max <= 0 {
		return nil
	}
	n, err := f.Store.Count(ctx, f.key(subject))
	if err != nil {
		return fmt.Errorf("limit: reading %s: %w", f.Name, err)
	}
	if n.N >= f.Rule.Max {
		return &ExceededError{Rule: f.Name, RetryAfter: n.ResetIn}
	}
	return nil
}

// Fail counts a failed attempt of subject.
func (f Failures) Fail(ctx context.Context, subject string) error {
	if f.Rule.Max <= 0 {
		return nil
	}
	if _, err := f.Store.Incr(ctx, f.key(subject), f.Rule.Window); err != nil {
		return fmt.Errorf("limit: counting %s: %w", f.Name, err)
	}
	return nil
}

// Forgive ends subject's count of failures, after a success: a person who
// mistyped twice and then got it right starts afresh.
func (f Failures) Forgive(ctx context.Context, subject string) error {
	if f.Rule.Max <= 0 {
		return nil
	}
	if err := f.Store.Reset(ctx, f.key(subject)); err != nil {
		return fmt.Errorf("limit: resetting %s: %w", f.Name, err)
	}
	return nil
}

func (f Failures) key(subject string) string { return key(f.Name, subject) }

// RetryAfterSeconds is d in whole seconds, rounded up, for a Retry-After
// header (RFC 9110 section 10.2.3).
func RetryAfterSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }
