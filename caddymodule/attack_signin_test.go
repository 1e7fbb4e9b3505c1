package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/mailgate/caddy-mailgate/internal/directory"
)

// The attack pass over seed 004's sign-in, through a real Caddy: what an
// attacker tries, and what they must get.

// signInFrom posts a sign-in body from origin with extra headers.
func (b *browser) signInFrom(origin, body string, hdr ...string) response {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.base+"/.mailgate/api/account/login", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

// TestAttackSignInThroughCaddy: the decoy hash's password (it is in the
// source) opens no account whose stored hash does not parse; the lock
// counts the username, the address and their case and space variants as
// one account; the cookies a sign-in sets have every attribute; and no
// origin but the client's own can read an answer or pass a preflight.
func TestAttackSignInThroughCaddy(t *testing.T) {
	e := startCaddyWith(t, kioskConfig)
	ctx := caddy.ActiveContext()
	users := directory.New(ctx.Storage(), "mailgate/default", now)

	// An account locked with "!" (as in /etc/shadow) or holding a hash
	// mailgate does not take.
	locked, err := users.EnsureByEmail(ctx, "gil@corp.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := users.SetPassword(ctx, locked.ID, "!"); err != nil {
		t.Fatal(err)
	}
	r := e.browser(t).signInFrom(kioskOrigin, `{"username":"gil@corp.example","password":"mailgate: no account has this password","clientId":"kiosk"}`)
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, `"invalid_credentials"`) || len(r.Cookies()) != 0 {
		t.Fatalf("the decoy's password for an account with an unusable hash: %s %s %v", r.Status, r.body, r.Cookies())
	}

	// Three wrong passwords (kioskConfig's lock), each under another name
	// of the same account, and from another claimed client IP: the right
	// password is refused after them.
	const pw = "correct horse battery staple"
	fay := withPassword(t, "fay@corp.example", pw)
	b := e.browser(t)
	for i, name := range []string{fay.Username, "FAY@Corp.Example", " fay@corp.example "} {
		r := b.signInFrom(kioskOrigin, `{"username":"`+name+`","password":"guess guess guess","clientId":"kiosk"}`,
			"X-Forwarded-For", "198.51.100."+string(rune('1'+i)))
		if r.StatusCode != http.StatusBadRequest {
			t.Fatalf("wrong password %d as %q: %s %s", i, name, r.Status, r.body)
		}
	}
	if r := b.signInFrom(kioskOrigin, `{"username":"Fay","password":"`+pw+`","clientId":"kiosk"}`); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, `"account_locked"`) {
		t.Fatalf("the right password after three wrong ones under other names: %s %s", r.Status, r.body)
	}

	// The cookies of a sign-in: the session and the remembered username,
	// each __Host-, Secure, HttpOnly, SameSite=Lax, Path=/.
	withPassword(t, "hal@corp.example", pw)
	r = e.browser(t).signInFrom(kioskOrigin, `{"username":"hal@corp.example","password":"`+pw+`","clientId":"kiosk","rememberUserName":true}`)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %s %s", r.Status, r.body)
	}
	seen := map[string]bool{}
	for _, line := range r.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatal(err)
		}
		seen[c.Name] = true
		if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("cookie %q: %s", c.Name, line)
		}
	}
	if !seen["__Host-mailgate"] || !seen["__Host-mailgate-username"] {
		t.Errorf("cookies set: %v", seen)
	}

	// CORS: a foreign origin, and the "null" origin of a sandboxed frame or
	// a file, pass no preflight and read no answer.
	for _, origin := range []string{"https://evil.example", "null", "https://kiosk.example.com.evil.example", "http://kiosk.example.com"} {
		req, _ := http.NewRequest(http.MethodOptions, e.base+"/.mailgate/api/account/login", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		pre := e.browser(t).do(req)
		post := e.browser(t).signInFrom(origin, `{"username":"hal","password":"`+pw+`","clientId":"kiosk"}`)
		for _, a := range []response{pre, post} {
			if a.Header.Get("Access-Control-Allow-Origin") != "" || a.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("origin %q: %s %v", origin, a.Request.Method, a.Header)
			}
		}
		if pre.StatusCode == http.StatusNoContent {
			t.Errorf("origin %q: the preflight passed", origin)
		}
	}
}

// TestAttackSpoofedForwardedForThroughCaddy: the per-IP bound on wrong
// passwords holds whatever X-Forwarded-For a client claims, since Caddy
// trusts no proxy here.
func TestAttackSpoofedForwardedForThroughCaddy(t *testing.T) {
	e := startCaddyWith(t, func(e *env) siteConfig {
		c := kioskConfig(e)
		c.Limits = `limits {
			failures_per_ip 2 15m
			failed_sign_ins_per_account 100 15m
		}`
		return c
	})
	b := e.browser(t)
	for i, ip := range []string{"198.51.100.1", "198.51.100.2", "203.0.113.9"} {
		r := b.signInFrom(kioskOrigin, `{"username":"nobody`+string(rune('a'+i))+`@corp.example","password":"guess guess guess","clientId":"kiosk"}`,
			"X-Forwarded-For", ip, "X-Real-IP", ip)
		want := http.StatusBadRequest
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if r.StatusCode != want {
			t.Fatalf("wrong password %d claiming %s: %s %s, want %d", i, ip, r.Status, r.body, want)
		}
	}
}
