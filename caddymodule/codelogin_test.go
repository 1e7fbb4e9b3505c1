package caddymodule

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCodeLoginInTheForm: the login form's "email me a code", the code page
// that keeps return and takes a pasted code with spaces, and the session it
// starts; a wrong code is said so on the page.
func TestCodeLoginInTheForm(t *testing.T) {
	e := startCaddy(t)
	b := e.browser(t)
	page := b.requestCode("alice@example.com", "/reports?q=1")
	for _, want := range []string{`autocomplete="one-time-code"`, `inputmode="numeric"`, "a•••e@example.com", "3 minutes", `name="return" value="/reports?q=1"`} {
		if !strings.Contains(page.body, want) {
			t.Fatalf("the code page lacks %q:\n%s", want, page.body)
		}
	}
	if strings.Contains(page.body, "alice@example.com") {
		t.Fatal("the code page shows the whole address")
	}
	code := e.mailedCode(t, "alice@example.com")

	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if r := b.enterCode(wrong, "/reports?q=1"); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, "not the code we sent") {
		t.Fatalf("a wrong code: %s\n%s", r.Status, r.body)
	}
	r := b.enterCode(" "+code[:3]+" "+code[3:]+" ", "/reports?q=1")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/reports?q=1" {
		t.Fatalf("the right code: %s %q\n%s", r.Status, r.Header.Get("Location"), r.body)
	}
	if got := b.get("/"); got.StatusCode != http.StatusOK {
		t.Fatalf("after the code, the site: %s", got.Status)
	}
	if r := b.enterCode(code, "/"); r.StatusCode != http.StatusGone || !strings.Contains(r.body, "expired or was already used") {
		t.Fatalf("the code a second time: %s\n%s", r.Status, r.body)
	}

	// An address outside the allow rules: the same pages, no mail.
	before := len(e.smtp.Messages())
	other := e.browser(t)
	other.requestCode("mallory@example.com", "/")
	if len(e.smtp.Messages()) != before {
		t.Fatal("a code was mailed to an address outside the allow rules")
	}
	if r := other.enterCode("123456", "/"); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, "not the code we sent") {
		t.Fatalf("a code for an address outside the rules: %s, want the page a wrong code gets", r.Status)
	}
}

// TestCodeLoginInTheFormSaysWhatIsLeft: the page counts down a code's
// tries and says when one is used up; an address over
// wrong_codes_per_address gets a page that says until when, mails no code,
// and offers the sign-in link instead, which works.
func TestCodeLoginInTheFormSaysWhatIsLeft(t *testing.T) {
	defer clockOffset.Store(0)
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Mailgate: "time_zone Europe/Brussels", Limits: `limits {
			wrong_codes_per_address 4 1h
		}`}
	})
	b := e.browser(t)
	b.requestCode("alice@example.com", "/")
	code := e.mailedCode(t, "alice@example.com")
	for i, want := range []string{"not the code we sent. Check", "one more try", "the last try for this code"} {
		r := b.enterCode(wrongOf(code), "/")
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, want) || strings.Contains(r.body, `name="code"`) != (i < 2) {
			t.Fatalf("wrong code %d: %s, want a page saying %q, with a field for the code while tries are left\n%s", i+1, r.Status, want, r.body)
		}
	}
	if r := b.enterCode(code, "/"); r.StatusCode != http.StatusGone || strings.Contains(r.body, `name="code"`) {
		t.Fatalf("the right code after three wrong ones: %s, want no field for another try\n%s", r.Status, r.body)
	}

	// The fourth wrong code for the address locks its codes for an hour.
	b.requestCode("alice@example.com", "/")
	if r := b.enterCode(wrongOf(e.mailedCode(t, "alice@example.com")), "/"); r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("the fourth wrong code: %s", r.Status)
	}
	mailed := len(e.smtp.Messages())
	// A date and a time, in the site's zone: the pause may end tomorrow.
	// The window opened with the first wrong code, perhaps in the minute
	// before this one.
	ends := now().Add(time.Hour).In(mustZone(t, "Europe/Brussels"))
	until, orUntil := ends.Format("2 Jan 2006 15:04 MST"), ends.Add(-time.Minute).Format("2 Jan 2006 15:04 MST")
	page := b.get("/.mailgate/login")
	r := b.post("/.mailgate/login/email", map[string]string{
		"email": "alice@example.com", "return": "/", "method": "code", "form_token": b.cookie("__Host-mailgate-form"),
	})
	if r.StatusCode != http.StatusTooManyRequests || !(strings.Contains(r.body, "until "+until) || strings.Contains(r.body, "until "+orUntil)) || !strings.Contains(r.body, "sign in with a link") ||
		strings.Contains(r.body, `value="code"`) || !strings.Contains(r.body, `value="alice@example.com"`) || r.Header.Get("Retry-After") == "" {
		t.Fatalf("asking a locked address for a code: %s (login page %s), want 429 saying until %s and offering the link\n%s", r.Status, page.Status, until, r.body)
	}
	if got := len(e.smtp.Messages()); got != mailed {
		t.Fatalf("%d mails to an address that may try no code", got-mailed)
	}
	// The link the page offers still signs the owner in.
	b.login("alice@example.com", "/")
	if got := b.get("/"); got.StatusCode != http.StatusOK {
		t.Fatalf("after the offered link: %s", got.Status)
	}
}
