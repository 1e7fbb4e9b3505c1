// Package mailgate is the root of the mailgate Caddy plugin. Importing it
// registers the http.handlers.mailgate module and the mailgate Caddyfile
// directive, which is what `xcaddy build --with github.com/mailgate/caddy-mailgate`
// relies on.
package mailgate

import (
	_ "github.com/mailgate/caddy-mailgate/caddymodule"
)
