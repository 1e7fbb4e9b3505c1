package limit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

func TestRuleAllowsMaxThenRefusesUntilTheWindowEnds(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	store := memoryStore(t, &now)
	ctx := context.Background()
	r := Rule{Max: 3, Window: 15 * time.Minute}
	for i := range 3 {
		if err := r.Hit(ctx, store, "mails_per_address", "alice@example.com"); err != nil {
			t.Fatalf("hit %d: %v", i+1, err)
		}
	}
	now = now.Add(5 * time.Minute)
	var ex *ExceededError
	if err := r.Hit(ctx, store, "mails_per_address", "alice@example.com"); !errors.As(err, &ex) || ex.RetryAfter != 10*time.Minute || ex.Rule != "mails_per_address" {
		t.Fatalf("4th hit = %v, want exceeded with 10m to wait", err)
	}
	// Other subjects and other rules count apart.
	if err := r.Hit(ctx, store, "mails_per_address", "bob@example.com"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	if err := r.Hit(ctx, store, "requests_per_ip", "alice@example.com"); err != nil {
		t.Fatalf("another rule: %v", err)
	}
	now = now.Add(10 * time.Minute)
	if err := r.Hit(ctx, store, "mails_per_address", "alice@example.com"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestIPSubjectGroupsAnIPv6Host(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                   "192.0.2.7",
		"::ffff:192.0.2.7":            "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":        "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff:ff:1": "2001:db8:1:2::/64",
		"not an ip":                   "not an ip",
	} {
		if got := IPSubject(in); got != want {
			t.Errorf("IPSubject(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFailuresRefuseBeforeTheAttempt(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	store := memoryStore(t, &now)
	ctx := context.Background()
	f := Failures{Rule: Rule{Max: 2, Window: time.Minute}, Store: store, Name: "failures_per_ip"}
	for i := range 2 {
		if err := f.Check(ctx, "192.0.2.1"); err != nil {
			t.Fatalf("check before failure %d: %v", i+1, err)
		}
		_ = f.Fail(ctx, "192.0.2.1")
	}
	var ex *ExceededError
	if err := f.Check(ctx, "192.0.2.1"); !errors.As(err, &ex) || ex.RetryAfter != time.Minute {
		t.Fatalf("after 2 failures: %v", err)
	}
	if err := f.Check(ctx, "192.0.2.2"); err != nil {
		t.Fatalf("another IP: %v", err)
	}
	now = now.Add(time.Minute)
	if err := f.Check(ctx, "192.0.2.1"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if RetryAfterSeconds(1500*time.Millisecond) != 2 {
		t.Fatal("Retry-After must round up")
	}
}

// memoryStore is a memory ticket store on the clock *now.
func memoryStore(t *testing.T, now *time.Time) *ticket.Memory {
	t.Helper()
	store, err := ticket.NewMemory(ticket.MinMemory, func() time.Time { return *now })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}
