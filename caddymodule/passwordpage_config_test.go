package caddymodule

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// The password page's options: a value other than the documented ones is
// refused at its Caddyfile line, and in a JSON config; the documented ones
// are accepted.
func TestPasswordPageConfig(t *testing.T) {
	for line, want := range map[string]string{
		"password_login yes":               `password_login "yes": use on or off`,
		"password_login":                   "wrong argument count",
		"password_keep_signed_in always":   `password_keep_signed_in "always": use checkbox, ask or off`,
		"password_keep_signed_in ask more": "wrong argument count",
	} {
		caddyfile := "http://localhost:8080 {\n\tmailgate {\n" + line + "\noutbox ./mailgate-outbox\n\t}\n}\n"
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Caddyfile:") {
			t.Errorf("%q: %v; want an error naming %q with the Caddyfile's line", line, err, want)
		}
	}
	for _, keep := range []string{"checkbox", "ask", "off"} {
		ok := "base_url https://app.example.com\n" + outbox + "password_login on\npassword_keep_signed_in " + keep
		if err := validate(t, ok); err != nil {
			t.Fatalf("password_keep_signed_in %s: %v", keep, err)
		}
	}
	m := Mailgate{BaseURL: "https://app.example.com", PasswordLogin: true, PasswordKeepSignedIn: "always"}
	if err := m.applyDefaults(); err == nil || !strings.Contains(err.Error(), "password_keep_signed_in") {
		t.Fatalf("a JSON config's password_keep_signed_in always: %v", err)
	}
}
