package limit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// FailureCounter is the store's counting, read, given back and reset.
type FailureCounter interface {
	Counter
	Count(ctx context.Context, key string) (ticket.Count, error)
	Refund(ctx context.Context, key string) error
	Reset(ctx context.Context, key string) error
}

// Failures limits failed attempts at secrets (links, codes, client
// secrets, authorization codes) per subject. An attempt is counted before
// its secret is compared (Try), in the same store operation that says
// whether it is still allowed, and given back once it turns out not to be a
// failure (Attempt.Done): counting after the compare would let fifty
// guesses sent at once all be compared before the first was counted. The
// zero Rule limits nothing.
type Failures struct {
	Rule  Rule
	Store FailureCounter
	// Name names the rule in keys and errors, such as "failures_per_ip".
	Name string
}

// Attempt is one counted try at a secret. Its caller marks it Failed when
// the secret was wrong, and calls Done in every case.
type Attempt struct {
	store  FailureCounter
	keys   []string
	failed bool
}

// Try counts an attempt of subject at a secret. Over the rule it returns an
// *ExceededError and the caller must not compare the secret; when the store
// cannot count it returns the store's error, and the caller must refuse
// too, since an uncounted attempt is an unlimited one.
func (f Failures) Try(ctx context.Context, subject string) (*Attempt, error) {
	return f.try(ctx, f.Rule, []string{f.key(subject)})
}

// TryIP is Try for a client IP, counted as HitIP counts it: IPv4 per
// address, IPv6 per /64 and per /48.
func (f Failures) TryIP(ctx context.Context, ip string) (*Attempt, error) {
	narrow, wide := ipSubjects(ip)
	keys := []string{f.key(narrow)}
	if wide != "" {
		keys = append(keys, key(f.Name+wideSuffix, wide))
	}
	return f.try(ctx, f.Rule, keys)
}

// try counts the attempt under each key in turn, the first with rule, the
// rest (wider prefixes) with rule.wide().
func (f Failures) try(ctx context.Context, rule Rule, keys []string) (*Attempt, error) {
	a := &Attempt{store: f.Store}
	if rule.Max <= 0 {
		return a, nil
	}
	for i, k := range keys {
		r := rule
		if i > 0 {
			r = rule.wide()
		}
		n, err := f.Store.Incr(ctx, k, r.Window)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("limit: counting %s: %w", f.Name, err), a.Done(ctx))
		}
		a.keys = append(a.keys, k)
		if n.N > r.Max {
			// Refused attempts stay counted: they were attempts, and the
			// window does not move for them.
			a.failed = true
			return nil, &ExceededError{Rule: f.Name, RetryAfter: n.ResetIn}
		}
	}
	return a, nil
}

// Failed records that the secret was wrong: the attempt stays counted.
func (a *Attempt) Failed() { a.failed = true }

// Done gives the attempt back unless it Failed: a success, or a refusal for
// another reason, is no failed secret.
func (a *Attempt) Done(ctx context.Context) error {
	if a == nil || a.failed {
		return nil
	}
	var errs []error
	for _, k := range a.keys {
		if err := a.store.Refund(ctx, k); err != nil {
			errs = append(errs, fmt.Errorf("limit: giving back an attempt: %w", err))
		}
	}
	a.keys = nil
	return errors.Join(errs...)
}

// Locked returns an *ExceededError when subject has no attempts left, for
// a caller about to hand out a secret that could not be used (a code mailed
// to an address that may not try codes now); nil otherwise.
func (f Failures) Locked(ctx context.Context, subject string) error {
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
