package caddymodule

import (
	"fmt"
	"os"
	"regexp"

	"github.com/caddyserver/caddy/v2"
)

// envPlaceholder finds {env.NAME} in a config value.
var envPlaceholder = regexp.MustCompile(`\{env\.([^{}]+)\}`)

// expandSecret replaces the placeholders in a secret taken from the config.
// An {env.X} that is empty in Caddy's environment is an error naming it:
// left alone it would become an empty client secret or a silent empty SMTP
// AUTH, found only when the first login fails.
func expandSecret(field, value string) (string, error) {
	for _, m := range envPlaceholder.FindAllStringSubmatch(value, -1) {
		if os.Getenv(m[1]) == "" {
			return "", fmt.Errorf("mailgate: %s %s is empty in Caddy's environment", field, m[0])
		}
	}
	return caddy.NewReplacer().ReplaceKnown(value, ""), nil
}
