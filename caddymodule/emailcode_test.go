package caddymodule

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// TestEmailCodeAPI walks seed 003's contract against the real Caddy, with
// mail at a real SMTP server.
func TestEmailCodeAPI(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig { return siteConfig{Mailgate: projectsConfig} })
	alice := `{"email":"alice@example.com"}`

	t.Run("start, read the code from the mail, complete, verify the user JWT with go-jose", func(t *testing.T) {
		payload := `{"level":3,"name":"Zoë"}`
		id := e.startCode(t, "&payload="+url.QueryEscape(payload), alice)
		code := e.mailedCode(t, "alice@example.com")
		if strings.Contains(id, code) || len(id) < 22 {
			t.Fatalf("operation id %q", id)
		}
		r, out := e.confirmCode(t, "alice@example.com", id, code[:3]+" "+code[3:])
		loginURL, _ := out["login_url"].(string)
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(loginURL, gameCallback+"?token=") {
			t.Fatalf("confirm: %s %s", r.Status, r.body)
		}
		u, _ := url.Parse(loginURL)
		claims := verifyUserJWT(t, e, u.Query().Get("token"))
		if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != gameProject || claims["email"] != "alice@example.com" || claims["payload"] != payload ||
			claims["iss"] != e.base+"/.mailgate" || claims["jti"] == "" || claims["sub"] == "" {
			t.Fatalf("claims %v", claims)
		}
		if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 3600 {
			t.Fatalf("lifetime %v s, want the default 1h", exp-iat)
		}
		// Used.
		if r, out := e.confirmCode(t, "alice@example.com", id, code); r.StatusCode != http.StatusUnprocessableEntity || codeError(t, r, out) != "code_expired" {
			t.Fatalf("a used code: %s %s", r.Status, r.body)
		}
		// The user JWT is neither a session nor an API access token.
		token := u.Query().Get("token")
		if got := e.browser(t).do(e.withCookie("/", token)); got.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the user JWT as a session cookie: %s", got.Status)
		}
		req, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/api/v1/magic-link", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+token)
		if got := e.browser(t).do(req); got.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the user JWT as an access token: %s %s", got.Status, got.body)
		}
	})

	t.Run("no payload claim without a payload", func(t *testing.T) {
		id := e.startCode(t, "", alice)
		_, out := e.confirmCode(t, "alice@example.com", id, e.mailedCode(t, "alice@example.com"))
		u, _ := url.Parse(out["login_url"].(string))
		if _, ok := verifyUserJWT(t, e, u.Query().Get("token"))["payload"]; ok {
			t.Fatal("a payload claim without a payload")
		}
	})

	t.Run("the code works until 2:59 and not at 3:00", func(t *testing.T) {
		defer clockOffset.Store(0)
		id := e.startCode(t, "", alice)
		code := e.mailedCode(t, "alice@example.com")
		clockOffset.Store(int64(3 * time.Minute))
		if r, out := e.confirmCode(t, "alice@example.com", id, code); r.StatusCode != http.StatusUnprocessableEntity || codeError(t, r, out) != "code_expired" {
			t.Fatalf("at 3:00: %s %s", r.Status, r.body)
		}
		clockOffset.Store(0)
		id = e.startCode(t, "", alice)
		code = e.mailedCode(t, "alice@example.com")
		clockOffset.Store(int64(3*time.Minute - time.Second))
		if r, _ := e.confirmCode(t, "alice@example.com", id, code); r.StatusCode != http.StatusOK {
			t.Fatalf("at 2:59: %s %s", r.Status, r.body)
		}
	})

	t.Run("a new code supersedes the old", func(t *testing.T) {
		old := e.startCode(t, "", alice)
		oldCode := e.mailedCode(t, "alice@example.com")
		id := e.startCode(t, "", alice)
		if r, out := e.confirmCode(t, "alice@example.com", old, oldCode); codeError(t, r, out) != "code_expired" {
			t.Fatalf("the superseded code: %s %s", r.Status, r.body)
		}
		if r, _ := e.confirmCode(t, "alice@example.com", id, e.mailedCode(t, "alice@example.com")); r.StatusCode != http.StatusOK {
			t.Fatalf("the new code: %s %s", r.Status, r.body)
		}
	})

	t.Run("three wrong codes end the operation, and the owner's next code works", func(t *testing.T) {
		id := e.startCode(t, "", `{"email":"bob@corp.example"}`)
		code := e.mailedCode(t, "bob@corp.example")
		for i, left := range []string{"2 tries left", "1 tries left", "last try"} {
			if r, out := e.confirmCode(t, "bob@corp.example", id, wrongOf(code)); r.StatusCode != http.StatusUnprocessableEntity || codeError(t, r, out) != "wrong_code" || !strings.Contains(r.body, left) {
				t.Fatalf("wrong code %d: %s %s, want wrong_code saying %q", i+1, r.Status, r.body, left)
			}
		}
		if r, out := e.confirmCode(t, "bob@corp.example", id, code); codeError(t, r, out) != "code_expired" {
			t.Fatalf("the right code after three wrong ones: %s %s", r.Status, r.body)
		}
		id = e.startCode(t, "", `{"email":"bob@corp.example"}`)
		if r, _ := e.confirmCode(t, "bob@corp.example", id, e.mailedCode(t, "bob@corp.example")); r.StatusCode != http.StatusOK {
			t.Fatalf("the owner's next code: %s %s", r.Status, r.body)
		}
	})

	t.Run("with_logout=0 keeps older sessions and user JWTs, with_logout=1 ends them", func(t *testing.T) {
		defer clockOffset.Store(0)
		older := e.browser(t).login("alice@example.com", "/")
		tokens := map[string]string{}
		// Tokens carry whole seconds: one issued in the logout-all's own
		// second is not before it.
		for i, withLogout := range []string{"0", "1"} {
			clockOffset.Store(int64(time.Duration(i+1) * time.Second))
			id := e.startCode(t, "&with_logout="+withLogout, alice)
			r, out := e.confirmCode(t, "alice@example.com", id, e.mailedCode(t, "alice@example.com"))
			if r.StatusCode != http.StatusOK {
				t.Fatalf("with_logout=%s: %s %s", withLogout, r.Status, r.body)
			}
			u, _ := url.Parse(out["login_url"].(string))
			tokens[withLogout] = u.Query().Get("token")
			got := e.browser(t).do(e.withCookie("/", older))
			if want := map[string]int{"0": http.StatusOK, "1": http.StatusUnauthorized}[withLogout]; got.StatusCode != want {
				t.Fatalf("the older session after with_logout=%s: %s, want %d", withLogout, got.Status, want)
			}
		}
		me := func(token, project string) (response, map[string]any) {
			return e.codeCall(t, http.MethodGet, "/users/me?projectId="+project, "", "Authorization", "Bearer "+token)
		}
		if r, out := me(tokens["1"], gameProject); r.StatusCode != http.StatusOK || out["email"] != "alice@example.com" || out["id"] == "" {
			t.Fatalf("the newest user JWT at /users/me: %s %s", r.Status, r.body)
		}
		if r, out := me(tokens["0"], gameProject); r.StatusCode != http.StatusUnauthorized || codeError(t, r, out) != "invalid_token" || !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") {
			t.Fatalf("a user JWT from before with_logout=1 at /users/me: %s %s", r.Status, r.body)
		}
		if r, _ := me(tokens["1"], twoCallbacks); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a user JWT at another project's /users/me: %s %s", r.Status, r.body)
		}
		if r, _ := me("not.a.token", gameProject); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("garbage at /users/me: %s %s", r.Status, r.body)
		}
		if r, _ := e.codeCall(t, http.MethodGet, "/users/me?projectId="+gameProject, ""); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("no token at /users/me: %s %s", r.Status, r.body)
		}
		// A session begun after the logout-all is valid.
		if got := e.browser(t).do(e.withCookie("/", e.browser(t).login("alice@example.com", "/"))); got.StatusCode != http.StatusOK {
			t.Fatalf("a session after with_logout=1: %s", got.Status)
		}
	})

	t.Run("the link variant: poll, confirm on another device, get the code, complete", func(t *testing.T) {
		id := e.startCode(t, "", `{"email":"alice@example.com","send_link":true,"link_url":"`+gameCallback+`"}`)
		code := e.mailedCode(t, "alice@example.com")
		getCode := func() (response, map[string]any) {
			return e.codeCall(t, http.MethodGet, "/login/email/request/code?projectId="+gameProject+"&login=alice@example.com&operation_id="+url.QueryEscape(id), "")
		}
		if r, out := getCode(); r.StatusCode != http.StatusUnprocessableEntity || codeError(t, r, out) != "not_confirmed" {
			t.Fatalf("before confirmation: %s %s", r.Status, r.body)
		}
		link := e.mailedCodeLink(t, "alice@example.com")
		other := e.browser(t) // another device
		page := other.get(mustURL(link).RequestURI())
		if page.StatusCode != http.StatusOK || !strings.Contains(page.body, "a•••e@example.com") || !strings.Contains(page.body, `action="/.mailgate/login/email/link"`) {
			t.Fatalf("the link's page: %s\n%s", page.Status, page.body)
		}
		if r, out := getCode(); codeError(t, r, out) != "not_confirmed" {
			t.Fatalf("opening the page confirmed it: %s %s", r.Status, r.body)
		}
		done := other.post("/.mailgate/login/email/link", map[string]string{"t": mustURL(link).Query().Get("t"), "form_token": other.cookie("__Host-mailgate-form")})
		if done.StatusCode != http.StatusOK || !strings.Contains(done.body, "go back to the app") || !strings.Contains(done.body, `href="`+gameCallback+`"`) {
			t.Fatalf("confirming: %s\n%s", done.Status, done.body)
		}
		if other.cookie("__Host-mailgate") != "" {
			t.Fatal("confirming a code's link started a session on that device")
		}
		r, out := getCode()
		if r.StatusCode != http.StatusOK || out["code"] != code {
			t.Fatalf("after confirmation: %s %s, want code %s", r.Status, r.body, code)
		}
		if r, _ := e.confirmCode(t, "alice@example.com", id, code); r.StatusCode != http.StatusOK {
			t.Fatalf("completing: %s %s", r.Status, r.body)
		}
		if p := mustURL(link).Query().Get("p"); p != gameProject || !strings.Contains(page.body, `name="p" value="`+gameProject+`"`) {
			t.Fatalf("the link and its page do not name the project: %q", p)
		}
		again := other.post("/.mailgate/login/email/link", map[string]string{"t": mustURL(link).Query().Get("t"), "p": gameProject, "form_token": other.cookie("__Host-mailgate-form")})
		if again.StatusCode != http.StatusGone || !strings.Contains(again.body, `href="https://game.example.com/auth/error"`) {
			t.Fatalf("the link a second time: %s\n%s", again.Status, again.body)
		}
		if gone := other.get(mustURL(link).RequestURI()); gone.StatusCode != http.StatusGone || !strings.Contains(gone.body, "Back to the app") {
			t.Fatalf("the used link's page: %s\n%s", gone.Status, gone.body)
		}
	})

	t.Run("an address outside the allow rules: the same answer, no mail", func(t *testing.T) {
		before := len(e.smtp.Messages())
		id := e.startCode(t, "", `{"email":"mallory@example.com"}`)
		if len(id) != len(e.startCode(t, "", alice)) {
			t.Fatalf("operation id %q is shaped unlike a real one", id)
		}
		if n := len(e.smtp.Messages()) - before; n != 1 {
			t.Fatalf("%d mails, want alice's only", n)
		}
		// A wrong code gets what it gets at a real operation.
		real := e.startCode(t, "", alice)
		mallory, _ := e.confirmCode(t, "mallory@example.com", id, "123456")
		alices, _ := e.confirmCode(t, "alice@example.com", real, wrongOf(e.mailedCode(t, "alice@example.com")))
		if mallory.StatusCode != alices.StatusCode || mallory.body != alices.body {
			t.Fatalf("a wrong code, outside the rules: %s %s; for an allowed address: %s %s", mallory.Status, mallory.body, alices.Status, alices.body)
		}
	})

}

// TestEmailCodeStartLimits: over requests_per_ip the start answers 429 with
// Retry-After in the API's shape; over failures_per_ip, so do the endpoints
// that check a secret (the code, the operation id, the user JWT), before
// they check it.
func TestEmailCodeStartLimits(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Mailgate: projectsConfig, Limits: `limits {
			requests_per_ip 2 1m
			failures_per_ip 2 1m
		}`}
	})
	for i := range 2 {
		if r, out := e.confirmCode(t, "alice@example.com", "no-such-operation", "123456"); codeError(t, r, out) != "code_expired" {
			t.Fatalf("unknown operation %d: %s %s", i+1, r.Status, r.body)
		}
	}
	for name, call := range map[string]func() (response, map[string]any){
		"confirm": func() (response, map[string]any) {
			return e.confirmCode(t, "alice@example.com", "no-such-operation", "123456")
		},
		"code": func() (response, map[string]any) {
			return e.codeCall(t, http.MethodGet, "/login/email/request/code?projectId="+gameProject+"&login=alice@example.com&operation_id=x", "")
		},
		"users/me": func() (response, map[string]any) {
			return e.codeCall(t, http.MethodGet, "/users/me?projectId="+gameProject, "", "Authorization", "Bearer not.a.token")
		},
	} {
		if r, out := call(); r.StatusCode != http.StatusTooManyRequests || codeError(t, r, out) != "too_many_requests" || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s over failures_per_ip: %s %s", name, r.Status, r.body)
		}
	}
	for range 2 {
		e.startCode(t, "", `{"email":"alice@example.com"}`)
	}
	r, out := e.codeCall(t, http.MethodPost, "/login/email/request?projectId="+gameProject, `{"email":"alice@example.com"}`)
	if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); r.StatusCode != http.StatusTooManyRequests || codeError(t, r, out) != "too_many_requests" || ra < 1 || ra > 60 {
		t.Fatalf("over requests_per_ip: %s %s (Retry-After %q)", r.Status, r.body, r.Header.Get("Retry-After"))
	}
}

// TestFiftyCodeGuessesAtOnce fires fifty wrong codes at one operation at
// once through Caddy: each is counted before its compare, so no more than
// three are compared, and the right code after them is refused. The same
// for failures_per_ip: of fifty unknown operations sent at once from one
// IP, only the limit's two are looked up.
func TestFiftyCodeGuessesAtOnce(t *testing.T) {
	defer clockOffset.Store(0)
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Mailgate: projectsConfig, Limits: `limits {
			failures_per_ip 200 1m
		}`}
	})
	id := e.startCode(t, "", `{"email":"alice@example.com"}`)
	code := e.mailedCode(t, "alice@example.com")
	answers := fireAtOnce(50, func() (response, map[string]any) {
		return e.confirmCode(t, "alice@example.com", id, wrongOf(code))
	})
	if answers["wrong_code"] > flow.CodeAttempts || answers["wrong_code"]+answers["code_expired"] != 50 {
		t.Fatalf("fifty wrong codes at once: %v; want at most %d compared (wrong_code), the rest code_expired", answers, flow.CodeAttempts)
	}
	if r, out := e.confirmCode(t, "alice@example.com", id, code); codeError(t, r, out) != "code_expired" {
		t.Fatalf("the right code after fifty guesses: %s %s", r.Status, r.body)
	}

	// A new window, so that the guesses above no longer count.
	clockOffset.Store(int64(time.Minute))
	e.reload(t, siteConfig{Mailgate: projectsConfig, Limits: `limits {
		failures_per_ip 2 1m
	}`})
	answers = fireAtOnce(50, func() (response, map[string]any) {
		return e.confirmCode(t, "alice@example.com", "no-such-operation", "123456")
	})
	if answers["code_expired"] != 2 || answers["too_many_requests"] != 48 {
		t.Fatalf("fifty unknown operations at once over failures_per_ip 2: %v; want 2 looked up, 48 refused", answers)
	}
}

// TestWrongCodesPerAddress: past wrong_codes_per_address an address gets
// no code (429 with Retry-After, and no mail), until the window ends.
func TestWrongCodesPerAddress(t *testing.T) {
	defer clockOffset.Store(0)
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Mailgate: projectsConfig, Limits: `limits {
			wrong_codes_per_address 4 1m
		}`}
	})
	for wrong := 0; wrong < 4; {
		id := e.startCode(t, "", `{"email":"bob@corp.example"}`)
		code := e.mailedCode(t, "bob@corp.example")
		for i := 0; i < flow.CodeAttempts && wrong < 4; i++ {
			if r, out := e.confirmCode(t, "bob@corp.example", id, wrongOf(code)); codeError(t, r, out) != "wrong_code" {
				t.Fatalf("wrong code %d: %s %s", wrong+1, r.Status, r.body)
			}
			wrong++
		}
	}
	mailed := len(e.smtp.Messages())
	r, out := e.codeCall(t, http.MethodPost, "/login/email/request?projectId="+gameProject, `{"email":"bob@corp.example"}`)
	if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); r.StatusCode != http.StatusTooManyRequests || codeError(t, r, out) != "too_many_requests" || ra < 1 || ra > 60 {
		t.Fatalf("a code for an address over its wrong codes: %s %s (Retry-After %q)", r.Status, r.body, r.Header.Get("Retry-After"))
	}
	if got := len(e.smtp.Messages()); got != mailed {
		t.Fatalf("%d mails sent to an address that may try no code", got-mailed)
	}
	clockOffset.Store(int64(time.Minute))
	id := e.startCode(t, "", `{"email":"bob@corp.example"}`)
	if r, _ := e.confirmCode(t, "bob@corp.example", id, e.mailedCode(t, "bob@corp.example")); r.StatusCode != http.StatusOK {
		t.Fatalf("after the window: %s %s", r.Status, r.body)
	}
}

// wrongOf is a code that is not code.
func wrongOf(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// fireAtOnce sends n calls at once and counts their answers by error code
// ("" for a success).
func fireAtOnce(n int, call func() (response, map[string]any)) map[string]int {
	var mu sync.Mutex
	answers := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			r, out := call()
			code := ""
			if e, ok := out["error"].(map[string]any); ok {
				code, _ = e["code"].(string)
			} else if r.StatusCode != http.StatusOK {
				code = r.Status
			}
			mu.Lock()
			answers[code]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return answers
}

// verifyUserJWT checks token against the realm's JWKS with go-jose, as an
// app without jwx would, and returns its claims.
func verifyUserJWT(t *testing.T, e *env, token string) map[string]any {
	t.Helper()
	var hdr struct{ Typ string }
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err := json.Unmarshal(raw, &hdr); err != nil || hdr.Typ != "mailgate-user+jwt" {
		t.Fatalf("user JWT header %s", raw)
	}
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(e.browser(t).get("/.mailgate/jwks.json").body), &jwks); err != nil {
		t.Fatal(err)
	}
	tok, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	keys := jwks.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", tok.Headers[0].KeyID)
	}
	var claims map[string]any
	var std josejwt.Claims
	if err := tok.Claims(keys[0].Key, &claims, &std); err != nil {
		t.Fatalf("the user JWT does not verify against the JWKS: %v", err)
	}
	if err := std.ValidateWithLeeway(josejwt.Expected{AnyAudience: josejwt.Audience{gameProject}, Time: time.Now()}, 0); err != nil {
		t.Fatal(err)
	}
	return claims
}
