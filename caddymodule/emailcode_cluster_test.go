package caddymodule

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
)

// awaitCode waits for a mail to to beyond the first seen ones and returns
// its code: a code started on the second instance is mailed by that
// process's queue, which the test's settling of queues does not reach.
func (e *env) awaitCode(t *testing.T, to string, seen int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.mailsTo(to) <= seen {
		if time.Now().After(deadline) {
			t.Fatalf("no new mail to %s within 10s", to)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e.mailedCode(t, to)
}

// sessionStatus is what instance e answers a page load with token as the
// session cookie.
func (e *env) sessionStatus(t *testing.T, token string) int {
	t.Helper()
	return e.browser(t).do(e.withCookie("/", token)).StatusCode
}

// userJWTStatus is what instance e's /users/me answers a project's app
// that presents the user JWT token.
func (e *env) userJWTStatus(t *testing.T, token string) int {
	t.Helper()
	r, _ := e.codeCall(t, http.MethodGet, "/users/me?projectId="+gameProject, "", "Authorization", "Bearer "+token)
	return r.StatusCode
}

// awaitStatus waits until status answers want on every instance, at most
// 5 seconds from since, the propagation bound of revocations.
func awaitStatus(t *testing.T, what string, want int, since time.Time, instances map[string]*env, status func(*env) int) {
	t.Helper()
	for name, inst := range instances {
		for {
			got := status(inst)
			if got == want {
				t.Logf("%s answered %d to %s %s after", name, want, what, time.Since(since).Round(time.Millisecond))
				break
			}
			if time.Since(since) > 5*time.Second {
				t.Fatalf("%s still answers %d to %s 5s after, want %d", name, got, what, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// expectStatus checks that status answers want on every instance now.
func expectStatus(t *testing.T, what string, want int, instances map[string]*env, status func(*env) int) {
	t.Helper()
	for name, inst := range instances {
		if got := status(inst); got != want {
			t.Fatalf("%s on %s: %d, want %d", what, name, got, want)
		}
	}
}

// nextSecond waits until the clock has left the second of since: tokens
// carry their issue time in whole seconds, and a logout-all ends those of
// earlier seconds only.
func nextSecond(t *testing.T, since time.Time) {
	t.Helper()
	deadline := since.Add(2 * time.Second)
	for time.Now().Truncate(time.Second).Equal(since.Truncate(time.Second)) {
		if time.Now().After(deadline) {
			t.Fatal("the clock did not leave its second")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEmailCodeAcrossInstances: two Caddy processes sharing one Redis and
// one storage folder serve seed 003's code logins as one site: a code
// started on A completes on B once, and with_logout=1 completed on B ends
// the user's older sessions on both within 5 seconds, while with_logout=0
// keeps them.
func TestEmailCodeAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	site := siteConfig{Mailgate: projectsConfig + "\n\t\t" + redisStore(srv.Addr())}
	a := startCaddyWith(t, func(*env) siteConfig { return site })
	b := startSecondInstance(t, a, site)
	both := map[string]*env{"A": a, "B": b}
	const alice = "alice@example.com"
	aliceBody := `{"email":"` + alice + `"}`

	// The user JWT of the first login, for the with_logout checks.
	var olderJWT string
	t.Run("a code started on A completes on B, once", func(t *testing.T) {
		id := a.startCode(t, "", aliceBody)
		code := a.mailedCode(t, alice)
		r, out := b.confirmCode(t, alice, id, code)
		loginURL, _ := out["login_url"].(string)
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(loginURL, gameCallback+"?token=") {
			t.Fatalf("completing A's code on B: %s %s", r.Status, r.body)
		}
		// B signs with the cluster's keys and names the cluster's issuer:
		// A's JWKS verifies it.
		olderJWT = mustURL(loginURL).Query().Get("token")
		claims := verifyUserJWT(t, a, olderJWT)
		if claims["email"] != alice || claims["iss"] != a.base+"/.mailgate" {
			t.Fatalf("claims of the user JWT from B: %v", claims)
		}
		for name, inst := range both {
			if r, out := inst.confirmCode(t, alice, id, code); r.StatusCode != http.StatusUnprocessableEntity || codeError(t, r, out) != "code_expired" {
				t.Fatalf("the used code again, on %s: %s %s", name, r.Status, r.body)
			}
		}
	})

	t.Run("of 10 concurrent completions of one code, split across A and B, one wins", func(t *testing.T) {
		id := a.startCode(t, "", aliceBody)
		code := a.mailedCode(t, alice)
		var wins, expired atomic.Int32
		var wg sync.WaitGroup
		for i := range 10 {
			inst := []*env{a, b}[i%2]
			br := inst.browser(t)
			wg.Go(func() {
				body := `{"email":"` + alice + `","operation_id":"` + id + `","code":"` + code + `"}`
				req, _ := http.NewRequest(http.MethodPost, inst.base+"/.mailgate/login/email/confirm?projectId="+gameProject, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := br.client.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					wins.Add(1)
				case http.StatusUnprocessableEntity:
					expired.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || expired.Load() != 9 {
			t.Fatalf("%d completions won and %d were refused, want 1 and 9", wins.Load(), expired.Load())
		}
	})

	t.Run("with_logout=0 keeps an older session and user JWT on both, with_logout=1 on B ends them on both", func(t *testing.T) {
		if olderJWT == "" {
			t.Skip("needs the user JWT of the first subtest")
		}
		session := func(token string) func(*env) int {
			return func(inst *env) int { return inst.sessionStatus(t, token) }
		}
		userJWT := func(token string) func(*env) int {
			return func(inst *env) int { return inst.userJWTStatus(t, token) }
		}
		older := a.browser(t).login(alice, "/")
		nextSecond(t, time.Now())
		expectStatus(t, "alice's session from A", http.StatusOK, both, session(older))
		expectStatus(t, "alice's user JWT from B", http.StatusOK, both, userJWT(olderJWT))

		// with_logout=0, started and completed on B.
		seen := a.mailsTo(alice)
		id := b.startCode(t, "&with_logout=0", aliceBody)
		r, out := b.confirmCode(t, alice, id, a.awaitCode(t, alice, seen))
		if r.StatusCode != http.StatusOK {
			t.Fatalf("with_logout=0 on B: %s %s", r.Status, r.body)
		}
		keptJWT := mustURL(out["login_url"].(string)).Query().Get("token")
		nextSecond(t, time.Now())
		// A logout on B after it: once A refuses that session, A has read
		// every revocation before it from the stream, so a logout-all
		// from with_logout=0 would show there too.
		bob := a.browser(t)
		bobSession := bob.login("bob@corp.example", "/")
		bobOnB := bob.on(b)
		bobOnB.get("/.mailgate/logout")
		if r := bobOnB.post("/.mailgate/logout", map[string]string{"form_token": bob.cookie("__Host-mailgate-form")}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("bob's logout on B: %s", r.Status)
		}
		awaitStatus(t, "bob's session after his logout on B", http.StatusUnauthorized, time.Now(), both, session(bobSession))
		expectStatus(t, "alice's older session after with_logout=0", http.StatusOK, both, session(older))
		expectStatus(t, "alice's older user JWT after with_logout=0", http.StatusOK, both, userJWT(olderJWT))
		expectStatus(t, "the user JWT of with_logout=0", http.StatusOK, both, userJWT(keptJWT))

		// with_logout=1, started on A and completed on B.
		id = a.startCode(t, "&with_logout=1", aliceBody)
		r, out = b.confirmCode(t, alice, id, a.mailedCode(t, alice))
		done := time.Now()
		if r.StatusCode != http.StatusOK {
			t.Fatalf("with_logout=1 on B: %s %s", r.Status, r.body)
		}
		newJWT := mustURL(out["login_url"].(string)).Query().Get("token")
		awaitStatus(t, "alice's older session after with_logout=1 on B", http.StatusUnauthorized, done, both, session(older))
		awaitStatus(t, "alice's older user JWT after with_logout=1 on B", http.StatusUnauthorized, done, both, userJWT(olderJWT))
		awaitStatus(t, "the user JWT of with_logout=0 after with_logout=1 on B", http.StatusUnauthorized, done, both, userJWT(keptJWT))

		// The login that ended them, and a session begun after it, work
		// on both.
		expectStatus(t, "the user JWT of with_logout=1", http.StatusOK, both, userJWT(newJWT))
		if claims := verifyUserJWT(t, a, newJWT); claims["email"] != alice {
			t.Fatalf("claims %v", claims)
		}
		expectStatus(t, "alice's session after the logout-all", http.StatusOK, both, session(a.browser(t).login(alice, "/")))
	})
}
