package clientapi

import (
	"net/http"
	"strings"
	"testing"
)

// next "email_code": a stateToken, no session, no principal (the password
// alone does not prove who it is), and items naming where the code went
// (masked) and for how long; login-resume answers the same until
// the link is confirmed, then done with the session.
func TestEmailCodeStepAnswers(t *testing.T) {
	h := newStepsAPI()
	w, out := signIn(t, h, `{"username":"coded","password":"right","clientId":"guard"}`)
	items, _ := out["items"].(map[string]any)
	if w.Code != http.StatusOK || out["next"] != "email_code" || out["stateToken"] != "st-code" || out["sessionToken"] != nil ||
		out["principal"] != nil || len(w.Result().Cookies()) != 0 || items["email"] != "c•••d@example.com" || items["expiresIn"] != float64(180) || len(items) != 2 {
		t.Fatalf("login: %d %v %v", w.Code, out, w.Result().Cookies())
	}
	w, out = stepCall(t, h, http.MethodGet, "login-resume?token=st-code", "")
	items, _ = out["items"].(map[string]any)
	if w.Code != http.StatusOK || out["next"] != "email_code" || out["stateToken"] != "st-code" || out["principal"] != nil || items["expiresIn"] != float64(60) || len(w.Result().Cookies()) != 0 {
		t.Fatalf("resume before the confirmation: %d %v", w.Code, out)
	}
	w, out = stepCall(t, h, http.MethodGet, "login-resume?token=st-code-confirmed", "")
	c := cookies(w)
	if w.Code != http.StatusOK || out["next"] != "done" || out["stateToken"] != nil || out["sessionToken"] != "kept-token" || out["items"] != nil ||
		c["__Host-mailgate"] == nil || c["__Host-mailgate"].Value != "kept-token" {
		t.Fatalf("resume after the confirmation: %d %v %v", w.Code, out, c)
	}
}

// The mail's refusals: over the engine's limits a 429 with Retry-After, a
// queue that takes no mail a 503; neither with a stateToken or a cookie.
func TestEmailCodeStepRefusals(t *testing.T) {
	h := newStepsAPI()
	for user, want := range map[string]struct {
		status int
		code   string
	}{
		"flooded":  {429, "too_many_requests"},
		"mailless": {503, "temporarily_unavailable"},
	} {
		w, out := signIn(t, h, `{"username":"`+user+`","password":"right","clientId":"guard"}`)
		if w.Code != want.status || out["responseCode"] != want.code || out["stateToken"] != nil || w.Header().Get("Retry-After") == "" || len(w.Result().Cookies()) != 0 {
			t.Errorf("%s: %d %v", user, w.Code, out)
		}
	}
	// A client with the second factor tells a short password its own
	// minimum.
	_, out := stepCall(t, h, "POST", "update-expired-password", `{"password":"password","stateToken":"st-expired","clientId":"guard","tenant":"default"}`)
	first, _ := out["errors"].([]any)[0].(map[string]any)
	if first["code"] != "too_short" || !strings.Contains(first["message"].(string), "at least 8 ") {
		t.Fatalf("a short password with the second factor: %v", first)
	}
}
