package clientapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The code API shares the JSON decoding of the server-to-server API: data
// after the object is its 400 bad_request too, including the stray ']' or
// '}' that json.Decoder.More does not see.
func TestCodeAPIRefusesTrailingData(t *testing.T) {
	for _, c := range []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"one object", "application/json", `{"email":"alice@example.com"}` + "\n", 0, ""},
		{"a stray bracket", "application/json", `{"email":"alice@example.com"}]`, 400, "bad_request"},
		{"a stray brace", "application/json", `{"email":"alice@example.com"} }`, 400, "bad_request"},
		{"a second object", "application/json", `{"email":"alice@example.com"}{}`, 400, "bad_request"},
		{"text/plain", "text/plain", `{"email":"alice@example.com"}`, 400, "bad_request"},
		{"an unknown field", "application/json", `{"mail":"alice@example.com"}`, 422, "unknown_field"},
	} {
		r := httptest.NewRequest(http.MethodPost, "https://app.example.com/.mailgate/login/email/request", strings.NewReader(c.body))
		r.Header.Set("Content-Type", c.contentType)
		var req struct {
			Email string `json:"email"`
		}
		e := decodeStrict(httptest.NewRecorder(), r, &req)
		switch {
		case c.status == 0 && (e != nil || req.Email != "alice@example.com"):
			t.Errorf("%s: %+v, %q; want it read", c.name, e, req.Email)
		case c.status != 0 && (e == nil || e.Status != c.status || e.Code != c.code):
			t.Errorf("%s: %+v, want %d %s", c.name, e, c.status, c.code)
		}
	}
}
