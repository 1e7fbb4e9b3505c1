package caddymodule

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// The steps' options: password_max_age under a day, and ask_persist or
// second_factor without sign_in, are refused at their Caddyfile line; the
// documented ones are accepted.
func TestSignInStepsConfig(t *testing.T) {
	for line, want := range map[string]string{
		"password_max_age 1h":                                   "password_max_age 1h0m0s: must be at least 24h",
		"client kiosk {\nsecret x\nask_persist\n}":              `client "kiosk": ask_persist needs sign_in`,
		"client kiosk {\nsign_in\nask_persist yes\n}":           "wrong argument count",
		"password_max_age soon":                                 `password_max_age`,
		"client kiosk {\nsign_in\nsecond_factor sms\n}":         `client "kiosk": second_factor "sms": must be email_code`,
		"client kiosk {\nsecret x\nsecond_factor email_code\n}": `client "kiosk": second_factor needs sign_in`,
		"client kiosk {\nsign_in\nsecond_factor\n}":             "wrong argument count",
	} {
		caddyfile := "http://localhost:8080 {\n\tmailgate {\n" + line + "\noutbox ./mailgate-outbox\n\t}\n}\n"
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Caddyfile:") {
			t.Errorf("%q: %v; want an error naming %q with the Caddyfile's line", line, err, want)
		}
	}
	ok := "base_url https://app.example.com\n" + outbox + "password_max_age 2160h\nclient kiosk {\nsign_in\nask_persist\nsecond_factor email_code\ncors_origin https://kiosk.example.com\n}"
	if err := validate(t, ok); err != nil {
		t.Fatalf("ask_persist and password_max_age: %v", err)
	}
}
