package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// codeGuardConfig is stepsConfig with a client, "guard", whose sign-ins
// need a code mailed after the password, and extra mailgate lines.
func codeGuardConfig(extra string) func(*env) siteConfig {
	return stepsConfig(`client guard {
			name "The Kiosk"
			sign_in
			second_factor email_code
			cors_origin ` + kioskOrigin + `
		}
		` + extra)
}

// confirmMailed opens the link of the newest mail to to on another device
// and confirms it there, as the person does; the page sends them back to
// the app, at back.
func (e *env) confirmMailed(t *testing.T, to, back string) {
	t.Helper()
	link := mustURL(e.mailedCodeLink(t, to))
	other := e.browser(t)
	if page := other.get(link.RequestURI()); page.StatusCode != http.StatusOK || !strings.Contains(page.body, `action="/.mailgate/login/email/link"`) {
		t.Fatalf("the code's link: %s\n%s", page.Status, page.body)
	}
	done := other.post("/.mailgate/login/email/link", map[string]string{"t": link.Query().Get("t"), "p": link.Query().Get("p"), "form_token": other.cookie("__Host-mailgate-form")})
	if done.StatusCode != http.StatusOK || !strings.Contains(done.body, `href="`+back+`"`) {
		t.Fatalf("confirming the code's link: %s\n%s", done.Status, done.body)
	}
	if other.cookie("__Host-mailgate") != "" {
		t.Fatal("confirming the link started a session on the other device")
	}
}

// TestEmailCodeStepThroughCaddy: a client with second_factor email_code
// stops a right password at email_code, with items naming the masked
// address and the code's lifetime; the code really arrives by SMTP;
// login-resume answers the same step, with the same token, until the
// mailed link is confirmed, then done with the session, once. The token
// is nothing to the other steps.
func TestEmailCodeStepThroughCaddy(t *testing.T) {
	cfg := codeGuardConfig("")
	e := startCaddyWith(t, cfg)
	dana := withPassword(t, "dana@corp.example", stepsPassword)
	b := e.browser(t)
	r, out := b.signIn(`{"username":"dana","password":"` + stepsPassword + `","clientId":"guard","persistent":true}`)
	token := wantStep(t, "second_factor email_code", r, out, "email_code", dana.ID)
	items, _ := out["items"].(map[string]any)
	if items["email"] != "d•••a@corp.example" || items["expiresIn"] != float64(180) || len(items) != 2 {
		t.Fatalf("items: %v", out["items"])
	}
	subject, text := e.mailed(t, "dana@corp.example")
	if code := e.mailedCode(t, "dana@corp.example"); !strings.Contains(subject, code) || !strings.Contains(text, "The Kiosk") {
		t.Fatalf("the mail: %q\n%s", subject, text)
	}
	// The kiosk client, without the second factor, signs in at once.
	if _, out := e.browser(t).signIn(`{"username":"dana","password":"` + stepsPassword + `","clientId":"kiosk"}`); out["next"] != "done" {
		t.Fatalf("a client without second_factor: %v", out)
	}

	for range 3 {
		r, out = b.stepCall(http.MethodGet, "login-resume?token="+url.QueryEscape(token), "")
		if again := wantStep(t, "login-resume before the confirmation", r, out, "email_code", dana.ID); again != token {
			t.Fatal("login-resume answered another stateToken")
		}
	}
	if page := b.get("/dashboard"); page.StatusCode == http.StatusOK {
		t.Fatal("the protected site let the sign-in through before its code")
	}
	r, out = b.stepCall(http.MethodPost, "login-persist", `{"stateToken":"`+token+`","persistent":true}`)
	wantRefusal(t, "an email_code token at login-persist", r, out, http.StatusBadRequest, "invalid_state_token")
	r, out = b.stepCall(http.MethodPost, "update-expired-password",
		`{"password":"a new and rather long passphrase","stateToken":"`+token+`","clientId":"guard","tenant":"default"}`)
	wantRefusal(t, "an email_code token at update-expired-password", r, out, http.StatusBadRequest, "invalid_state_token")

	e.confirmMailed(t, "dana@corp.example", kioskOrigin)
	r, out = b.stepCall(http.MethodGet, "login-resume?token="+url.QueryEscape(token), "")
	session := cookieOf(r, "__Host-mailgate")
	if r.StatusCode != http.StatusOK || out["next"] != "done" || out["stateToken"] != nil || session == nil || out["sessionToken"] != session.Value ||
		r.Header.Get("Access-Control-Allow-Origin") != kioskOrigin || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("login-resume after the confirmation: %s %s %v", r.Status, r.body, r.Header)
	}
	if left := time.Until(session.Expires); left < 29*24*time.Hour {
		t.Fatalf("login asked for persistent: the cookie expires %v", session.Expires)
	}
	if page := b.get("/dashboard"); page.StatusCode != http.StatusOK || e.upstream.last(t).Get("Remote-Email") != "dana@corp.example" {
		t.Fatalf("the session: %s", page.Status)
	}
	r, out = b.stepCall(http.MethodGet, "login-resume?token="+url.QueryEscape(token), "")
	wantRefusal(t, "login-resume after done", r, out, http.StatusBadRequest, "invalid_state_token")

	// The step ends with its code, three minutes after the mail.
	r, out = b.signIn(`{"username":"dana","password":"` + stepsPassword + `","clientId":"guard"}`)
	late := wantStep(t, "a second sign-in", r, out, "email_code", dana.ID)
	e.confirmMailed(t, "dana@corp.example", kioskOrigin)
	clockOffset.Add(int64(3 * time.Minute))
	r, out = b.stepCall(http.MethodGet, "login-resume?token="+url.QueryEscape(late), "")
	wantRefusal(t, "login-resume after three minutes", r, out, http.StatusBadRequest, "invalid_state_token")

	// With the second factor, an expired password comes after the code,
	// and its replacement needs 8 characters, not 15.
	if out, err := e.runCLI(t, cfg(e), "users", "expire-password", dana.ID); err != nil {
		t.Fatalf("users expire-password: %v %s", err, out)
	}
	r, out = b.signIn(`{"username":"dana","password":"` + stepsPassword + `","clientId":"guard"}`)
	token = wantStep(t, "an expired password behind the code", r, out, "email_code", dana.ID)
	e.confirmMailed(t, "dana@corp.example", kioskOrigin)
	r, out = b.stepCall(http.MethodGet, "login-resume?token="+url.QueryEscape(token), "")
	expired := wantStep(t, "after the code", r, out, "expired_password", dana.ID)
	update := func(pw string) (response, map[string]any) {
		body, _ := json.Marshal(map[string]string{"password": pw, "stateToken": expired, "clientId": "guard", "tenant": "default"})
		return b.stepCall(http.MethodPost, "update-expired-password", string(body))
	}
	r, out = update("Kx9#mQ2")
	wantRefusal(t, "7 characters", r, out, http.StatusBadRequest, "password_rejected")
	if errs, _ := out["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["code"] != "too_short" || !strings.Contains(errs[0].(map[string]any)["message"].(string), "at least 8 ") {
		t.Fatalf("7 characters: %v", out["errors"])
	}
	if r, out = update("Kx9#mQ2$"); r.StatusCode != http.StatusOK || out["next"] != "done" || cookieOf(r, "__Host-mailgate") == nil {
		t.Fatalf("8 characters with the second factor: %s %s", r.Status, r.body)
	}
}

// TestEmailCodeStepLimitsThroughCaddy: the code's mail is the email-code
// engine's, under its mails_per_address: over it, the sign-in is answered
// 429 too_many_requests with Retry-After and mails nothing.
func TestEmailCodeStepLimitsThroughCaddy(t *testing.T) {
	e := startCaddyWith(t, func(e *env) siteConfig {
		c := codeGuardConfig("")(e)
		c.Limits = strings.Replace(c.Limits, "mails_per_address 1000000 1m", "mails_per_address 2 15m", 1)
		return c
	})
	dana := withPassword(t, "dana@corp.example", stepsPassword)
	signIn := `{"username":"dana","password":"` + stepsPassword + `","clientId":"guard"}`
	for range 2 {
		r, out := e.browser(t).signIn(signIn)
		wantStep(t, "within mails_per_address", r, out, "email_code", dana.ID)
	}
	r, out := e.browser(t).signIn(signIn)
	wantRefusal(t, "over mails_per_address", r, out, http.StatusTooManyRequests, "too_many_requests")
	if r.Header.Get("Retry-After") == "" || out["stateToken"] != nil || cookieOf(r, "__Host-mailgate") != nil {
		t.Fatalf("over mails_per_address: %v %s", r.Header, r.body)
	}
	if n := e.mailsTo("dana@corp.example"); n != 2 {
		t.Fatalf("%d mails, want 2", n)
	}
}

// TestEmailCodeStepFiftyResumesThroughCaddy: after the confirmation,
// fifty login-resume calls with one stateToken at once: exactly one is
// done with a session, the others find the token used; on the memory
// store and on Redis.
func TestEmailCodeStepFiftyResumesThroughCaddy(t *testing.T) {
	eachStore(t, func(t *testing.T, store, storeLines string) {
		e := startCaddyWith(t, codeGuardConfig(storeLines))
		dana := withPassword(t, "dana-"+store+"@corp.example", stepsPassword)
		r, out := e.browser(t).signIn(`{"username":"` + dana.Email + `","password":"` + stepsPassword + `","clientId":"guard"}`)
		token := wantStep(t, "email_code", r, out, "email_code", dana.ID)
		e.confirmMailed(t, dana.Email, kioskOrigin)
		type answer struct {
			status  int
			next    any
			session bool
		}
		answers := make([]answer, 50)
		clients := make([]*http.Client, len(answers))
		for i := range clients {
			clients[i] = e.browser(t).client
		}
		atOnce(len(answers), func(i int) {
			resp, err := clients[i].Get(e.base + "/.mailgate/api/account/login-resume?token=" + url.QueryEscape(token))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var out map[string]any
			_ = json.Unmarshal(body, &out)
			session := false
			for _, c := range resp.Cookies() {
				session = session || c.Name == "__Host-mailgate"
			}
			answers[i] = answer{resp.StatusCode, out["next"], session}
		})
		done, refused := 0, 0
		for _, a := range answers {
			switch {
			case a.status == http.StatusOK && a.next == "done" && a.session:
				done++
			case a.status == http.StatusBadRequest && !a.session:
				refused++
			}
		}
		if done != 1 || refused != 49 {
			t.Fatalf("%d done, %d refused (%v); want 1 and 49", done, refused, answers)
		}
	})
}
