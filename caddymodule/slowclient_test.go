package caddymodule

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TestSlowClientsAreCutOff: with Caddy's read timeouts set as the README
// and Caddyfile.example show them, a client that sends a form post's
// headers and then dribbles its body a byte at a time, or that dribbles the
// headers themselves, has its connection closed by the server, instead of
// holding it for as long as it keeps sending.
func TestSlowClientsAreCutOff(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig {
		return siteConfig{Servers: "timeouts {\n\t\t\tread_header 1s\n\t\t\tread_body 1s\n\t\t}"}
	})
	host := strings.TrimPrefix(e.base, "https://")
	for _, c := range []struct{ name, head string }{
		{"a form post's body", "POST /.mailgate/login/email HTTP/1.1\r\nHost: " + host + "\r\nOrigin: " + e.base +
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nemail="},
		{"the headers", "POST /.mailgate/login/email HTTP/1.1\r\nHost: " + host + "\r\nX-Slow: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: e.roots, ServerName: "localhost"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, c.head); err != nil {
				t.Fatal(err)
			}
			// One byte every 100ms: never idle, and 100,000 bytes would
			// take hours to finish.
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := conn.Write([]byte("a")); err != nil {
							return
						}
					}
				}
			}()
			// Ten times the timeouts: the server must have closed by then.
			if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, conn)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the server still holds the connection of a client dribbling " + c.name + " after 10s")
			}
		})
	}
}

// TestExampleBoundsSlowClients: the config people start from bounds how
// long a request's headers and the whole request may take.
func TestExampleBoundsSlowClients(t *testing.T) {
	var parsed struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					ReadTimeout       caddy.Duration `json:"read_timeout"`
					ReadHeaderTimeout caddy.Duration `json:"read_header_timeout"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(adaptExample(t), &parsed); err != nil {
		t.Fatal(err)
	}
	if len(parsed.Apps.HTTP.Servers) == 0 {
		t.Fatal("the example has no server")
	}
	for name, srv := range parsed.Apps.HTTP.Servers {
		header, body := time.Duration(srv.ReadHeaderTimeout), time.Duration(srv.ReadTimeout)
		if header <= 0 || header > time.Minute || body <= 0 || body > time.Minute {
			t.Errorf("server %s: read_header %s, read_body %s; want both set, at most 1m", name, header, body)
		}
	}
}
