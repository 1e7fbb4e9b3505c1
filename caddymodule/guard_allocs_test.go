package caddymodule

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// TestKnownSessionCostsOneAllocation: the guard passes a request of a
// session it has seen with one allocation, the request's own copy of the
// identity headers' values (TestHeadersRewrittenAfterTheGuardStayThisRequests
// says why), with the signed assertion on (the session's assertion is
// signed once and then only handed on) and with session_idle on (a request
// that does not re-issue the cookie; one that still carries a token the
// guard re-issued is handed the same new one, in a Set-Cookie slice of its
// own: one more).
func TestKnownSessionCostsOneAllocation(t *testing.T) {
	for _, c := range []struct {
		name      string
		idle      time.Duration
		assertion bool
		renewed   bool
		allocs    float64
	}{
		{"plain", 0, false, false, 1},
		{"assertion", 0, true, false, 1},
		{"session_idle", 30 * time.Minute, false, false, 1},
		{"both", 30 * time.Minute, true, false, 1},
		{"session_idle renewed", 30 * time.Minute, false, true, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The module's clock, which the assertion also reads (other
			// tests move it), and this test's own step on top.
			var offset atomic.Int64
			clock := func() time.Time { return now().Add(time.Duration(offset.Load())) }
			m, r := guardFixtureIdle(t, nil, c.idle, clock)
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
			renewal := ""
			if c.renewed {
				offset.Store(int64(session.RefreshEvery + time.Second))
				again()
				if err := m.ServeHTTP(w, r, nextOK); err != nil {
					t.Fatal(err)
				}
				if renewal = w.Header().Get("Set-Cookie"); renewal == "" {
					t.Fatal("no new cookie a minute on")
				}
			}
			n := testing.AllocsPerRun(100, func() {
				again()
				delete(w.Header(), "Set-Cookie")
				if err := m.ServeHTTP(w, r, nextOK); err != nil {
					t.Fatal(err)
				}
			})
			if n != c.allocs {
				t.Fatalf("a known session's request allocated %v times, want %v", n, c.allocs)
			}
			if got := r.Header.Get("Mailgate-Assertion"); got != first {
				t.Fatal("the assertion was signed again")
			}
			if got := w.Header().Get("Set-Cookie"); got != renewal {
				t.Fatalf("Set-Cookie %q, want %q (none within the first minute, the same new token after it)", got, renewal)
			}
		})
	}
}
