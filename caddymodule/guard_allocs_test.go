package caddymodule

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// TestKnownSessionCostsNoAllocation: the guard passes a request of a session
// it has seen without an allocation, with the signed assertion on (the
// session's assertion is signed once and then only handed on) and with
// session_idle on (a request that does not re-issue the cookie).
func TestKnownSessionCostsNoAllocation(t *testing.T) {
	for _, c := range []struct {
		name      string
		idle      time.Duration
		assertion bool
	}{
		{"plain", 0, false},
		{"assertion", 0, true},
		{"session_idle", 30 * time.Minute, false},
		{"both", 30 * time.Minute, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, r := guardFixtureIdle(t, nil, c.idle, time.Now)
			if c.assertion {
				ring, err := session.LoadKeyRing(context.Background(), memstorage.New(), "k", time.Now)
				if err != nil {
					t.Fatal(err)
				}
				m.origin = "https://app.example.com"
				m.assertions = m.provisionAssertions(ring)
			}
			again := resend(r)
			w := httptest.NewRecorder()
			if err := m.ServeHTTP(w, r, nextOK); err != nil {
				t.Fatal(err)
			}
			first := r.Header.Get("Mailgate-Assertion")
			if c.assertion == (first == "") {
				t.Fatalf("assertion %q with the assertion on: %v", first, c.assertion)
			}
			n := testing.AllocsPerRun(100, func() {
				again()
				if err := m.ServeHTTP(w, r, nextOK); err != nil {
					t.Fatal(err)
				}
			})
			if n != 0 {
				t.Fatalf("a known session's request allocated %v times, want 0", n)
			}
			if got := r.Header.Get("Mailgate-Assertion"); got != first {
				t.Fatal("the assertion was signed again")
			}
			if w.Header().Get("Set-Cookie") != "" {
				t.Fatal("the session was re-issued within its first minute")
			}
		})
	}
}
