// Command caddy is Caddy with the standard modules and mailgate compiled in,
// so that `go run ./caddy run --config Caddyfile.example` works without xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/mailgate/caddy-mailgate"
)

func main() {
	caddycmd.Main()
}
