package caddymodule

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/password"
)

const kioskOrigin = "https://kiosk.example.com"

// kioskConfig is a browser client that may sign people in, without a
// secret, and locks an account after three wrong passwords.
func kioskConfig(*env) siteConfig {
	return siteConfig{
		Mailgate: `client kiosk {
			sign_in
			cors_origin ` + kioskOrigin + `
		}`,
		Limits: `limits {
			mails_per_address 1000000 1m
			requests_per_ip 1000000 1m
			failures_per_ip 1000000 1m
			failed_sign_ins_per_account 3 15m
		}`,
	}
}

// withPassword creates an active user at email with pw in Caddy's storage.
func withPassword(t *testing.T, email, pw string) directory.User {
	t.Helper()
	ctx := caddy.ActiveContext()
	users := directory.New(ctx.Storage(), "mailgate/default", now)
	u, err := users.Create(ctx, directory.NewUser{Email: email, Name: "Dana"})
	if err != nil {
		t.Fatal(err)
	}
	if err := users.SetPassword(ctx, u.ID, password.New(pw).String()); err != nil {
		t.Fatal(err)
	}
	if u, err = users.SignUp(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	return u
}

// signInCall posts a sign-in from the kiosk's page in b.
func (b *browser) signIn(body string) (response, map[string]any) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.base+"/.mailgate/api/account/login", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", kioskOrigin)
	r := b.do(req)
	var out map[string]any
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		b.t.Fatalf("sign-in: %s %q", r.Status, r.body)
	}
	return r, out
}

// TestPasswordSignInThroughCaddy: the kiosk's page signs a person in with
// a username and password; the session it gets reaches the upstream as
// that person, and a wrong password gets the seed's 400 whatever the
// account.
func TestPasswordSignInThroughCaddy(t *testing.T) {
	e := startCaddyWith(t, kioskConfig)
	const pw = "correct horse battery staple"
	dana := withPassword(t, "dana@corp.example", pw)
	b := e.browser(t)
	r, out := b.signIn(`{"username":"dana","password":"` + pw + `","clientId":"kiosk"}`)
	principal, _ := out["principal"].(map[string]any)
	if r.StatusCode != http.StatusOK || out["next"] != "done" || principal["id"] != dana.ID || principal["email"] != "dana@corp.example" {
		t.Fatalf("sign-in: %s %s", r.Status, r.body)
	}
	if r.Header.Get("Access-Control-Allow-Origin") != kioskOrigin || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("CORS: %v", r.Header)
	}
	if token, _ := out["sessionToken"].(string); token == "" || token != b.cookie("__Host-mailgate") {
		t.Fatalf("sessionToken %q, cookie %q", token, b.cookie("__Host-mailgate"))
	}
	if page := b.get("/dashboard"); page.StatusCode != http.StatusOK || e.upstream.last(t).Get("Remote-Email") != "dana@corp.example" {
		t.Fatalf("the protected page with the session: %s", page.Status)
	}
	// The user's display name reaches the app.
	if got := e.upstream.last(t).Get("Remote-Name"); got != "Dana" {
		t.Fatalf("Remote-Name %q, want the user's name", got)
	}

	// "Keep me signed in": a cookie that outlives the browser, for
	// persistent_session_ttl (30 days by default); without it, one that
	// does not.
	for persistent, want := range map[bool]time.Duration{false: 0, true: 30 * 24 * time.Hour} {
		r, _ := e.browser(t).signIn(`{"username":"dana","password":"` + pw + `","clientId":"kiosk","persistent":` + strconv.FormatBool(persistent) + `}`)
		var session *http.Cookie
		for _, c := range r.Cookies() {
			if c.Name == "__Host-mailgate" {
				session = c
			}
		}
		if session == nil {
			t.Fatalf("persistent %v: no session cookie", persistent)
		}
		if left := time.Until(session.Expires); (want == 0) != session.Expires.IsZero() || (want != 0 && (left < want-time.Minute || left > want+time.Minute)) {
			t.Fatalf("persistent %v: the cookie expires %v", persistent, session.Expires)
		}
	}

	wrong, wrongOut := e.browser(t).signIn(`{"username":"dana","password":"wrong horse battery staple","clientId":"kiosk"}`)
	unknown, unknownOut := e.browser(t).signIn(`{"username":"nobody@example.com","password":"` + pw + `","clientId":"kiosk"}`)
	for _, o := range []map[string]any{wrongOut, unknownOut} {
		delete(o, "identifier")
	}
	if wrong.StatusCode != http.StatusBadRequest || unknown.StatusCode != http.StatusBadRequest || wrongOut["responseCode"] != "invalid_credentials" ||
		!equalJSON(wrongOut, unknownOut) {
		t.Fatalf("a wrong password: %s %v; an unknown account: %s %v", wrong.Status, wrongOut, unknown.Status, unknownOut)
	}
}

// TestPasswordSignInLocksAfterWrongPasswords: past failed_sign_ins_per_account
// the right password is refused with 401 and Retry-After.
func TestPasswordSignInLocksAfterWrongPasswords(t *testing.T) {
	e := startCaddyWith(t, kioskConfig)
	const pw = "correct horse battery staple"
	withPassword(t, "erin@corp.example", pw)
	b := e.browser(t)
	for range 3 {
		b.signIn(`{"username":"erin@corp.example","password":"guess guess guess","clientId":"kiosk"}`)
	}
	r, out := b.signIn(`{"username":"erin@corp.example","password":"` + pw + `","clientId":"kiosk"}`)
	if r.StatusCode != http.StatusUnauthorized || out["responseCode"] != "account_locked" || r.Header.Get("Retry-After") == "" || b.cookie("__Host-mailgate") != "" {
		t.Fatalf("locked: %s %s %v", r.Status, r.body, r.Header)
	}
}

func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestMeasureSignInLatency times a wrong password for an account that has
// one, for an unknown account and for an account without a password,
// interleaved, and logs the medians and 90th percentiles: the answers are
// the same, and so must the time be. A measurement, not a test:
// MAILGATE_MEASURE=200 runs it (docs/sign-in.md has the figures).
func TestMeasureSignInLatency(t *testing.T) {
	n := measureCount(t)
	e := startCaddyWith(t, func(e *env) siteConfig {
		c := kioskConfig(e)
		c.Limits = strings.Replace(c.Limits, "failed_sign_ins_per_account 3 15m", "failed_sign_ins_per_account 1000000 1m", 1)
		return c
	})
	withPassword(t, "frank@corp.example", "correct horse battery staple")
	ctx := caddy.ActiveContext()
	if _, err := directory.New(ctx.Storage(), "mailgate/default", now).EnsureByEmail(ctx, "gina@corp.example"); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	kinds := []string{"frank@corp.example", "nobody@corp.example", "gina@corp.example"}
	took := map[string][]time.Duration{}
	for i := range n + 20 {
		for j := range kinds {
			who := kinds[(i+j)%len(kinds)]
			began := time.Now()
			if r, _ := b.signIn(`{"username":"` + who + `","password":"wrong horse battery staple","clientId":"kiosk"}`); r.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s: %s", who, r.Status)
			}
			if i >= 20 {
				took[who] = append(took[who], time.Since(began))
			}
		}
	}
	for _, who := range kinds {
		t.Logf("| %s | %d | %s | %s |", who, n, quantile(took[who], 0.5), quantile(took[who], 0.9))
	}
}

// Hashing takes a quarter of the cores' time at most, however many there
// are: half the cores hash at once, each slot resting between its hashes.
func TestHashingBounds(t *testing.T) {
	for _, c := range []struct {
		cores, slots int
		share        float64
	}{{1, 1, 0.25}, {2, 1, 0.5}, {3, 1, 0.75}, {4, 2, 0.5}, {16, 8, 0.5}} {
		slots, share := hashingBounds(c.cores)
		if slots != c.slots || share != c.share {
			t.Errorf("%d cores: %d slots at %.2f, want %d at %.2f", c.cores, slots, share, c.slots, c.share)
		}
		if got := float64(slots) * share / float64(c.cores); got > hashingShare {
			t.Errorf("%d cores: hashing may take %.2f of them", c.cores, got)
		}
	}
}
