package caddymodule

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mailgate/caddy-mailgate/internal/limit"
)

// validate adapts a Caddyfile site whose mailgate block is body, then
// provisions it as Caddy would at start, without starting servers.
func validate(t *testing.T, body string) error {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	caddyfile := "{\n\tadmin off\n\tstorage file_system " + dir + "\n}\n" +
		"http://localhost:8080 {\n\tmailgate {\n" + body + "\n\t}\n\trespond ok\n}\n"
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		return err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

const outbox = "outbox ./mailgate-outbox\n"

func TestConfigErrorsNameTheBadValue(t *testing.T) {
	smtp := func(inner string) string {
		return "base_url https://app.example.com\nsmtp smtp.example.com:587 {\n" + inner + "\n}\n"
	}
	cases := []struct {
		name, body, want string
	}{
		{"relative base_url", "base_url /login\n" + outbox, `base_url "/login"`},
		{"base_url with a path", "base_url https://app.example.com/app\n" + outbox, "origin only"},
		{"plain http to a public host", "base_url http://app.example.com\n" + outbox, "localhost only"},
		{"missing base_url", outbox, "base_url is required"},
		{"from that does not parse", smtp(`from "Example <not an address"`), `smtp from "Example <not an address"`},
		{"missing from", smtp(""), "smtp from is required"},
		{"both smtp and outbox", smtp(`from login@example.com`) + outbox, "both smtp and outbox"},
		{"neither smtp nor outbox", "base_url https://app.example.com", "neither smtp nor outbox"},
		{"tls none to a remote host", smtp("tls none\nfrom login@example.com"), "tls none to smtp.example.com"},
		{"unknown tls mode", smtp("tls maybe\nfrom login@example.com"), `smtp tls "maybe"`},
		{"ca_file with tls none", smtp("tls none\ninsecure\nca_file /etc/smtp-ca.pem\nfrom login@example.com"), "smtp ca_file /etc/smtp-ca.pem: tls none checks no certificate"},
		{"ca_file that is not there", smtp("ca_file /nonexistent/smtp-ca.pem\nfrom login@example.com"), "smtp ca_file: open /nonexistent/smtp-ca.pem"},
		{"ca_file without a certificate", smtp("ca_file ../go.mod\nfrom login@example.com"), "smtp ca_file ../go.mod: no PEM certificate in it"},
		{"local_name that is no host name", smtp(`local_name "mail example"` + "\nfrom login@example.com"), `smtp local_name "mail example": must be a host name`},
		{"unknown subdirective", "base_url https://app.example.com\n" + outbox + "colour blue", `unknown subdirective "colour"`},
		{"a limit of 0", "base_url https://app.example.com\n" + outbox + "limits {\nmails_per_address 0 15m\n}", "limits mails_per_address: max 0 must be between 1 and 1000000"},
		{"a limit window over a day", "base_url https://app.example.com\n" + outbox + "limits {\nrequests_per_ip 20 48h\n}", "limits requests_per_ip: window 48h0m0s must be between 1s and 24h"},
		{"a limit without its window", "base_url https://app.example.com\n" + outbox + "limits {\nmails_per_address 5\n}", "limits mails_per_address: want <max> <window>"},
		{"redis without an address", "base_url https://app.example.com\n" + outbox + "store redis {\ndb 1\n}", `store redis address "": want host:port`},
		{"redis with max_memory", "base_url https://app.example.com\n" + outbox + "store redis {\naddress 127.0.0.1:6379\nmax_memory 8MiB\n}", "max_memory is for store memory"},
		{"redis with too few counters", "base_url https://app.example.com\n" + outbox + "store redis {\naddress 127.0.0.1:6379\ncounters 100\n}", "store redis counters 100: must be between 1024 and 16777216"},
		{"memory with a redis address", "base_url https://app.example.com\n" + outbox + "store memory {\naddress 127.0.0.1:6379\n}", "are for store redis"},
		{"an unknown store", "base_url https://app.example.com\n" + outbox + "store etcd", `store "etcd": unknown (known: memory, redis)`},
		{"empty env in the redis password", "base_url https://app.example.com\n" + outbox + "store redis {\naddress 127.0.0.1:1\npassword {env.MAILGATE_UNSET_SECRET}\n}", "store redis password {env.MAILGATE_UNSET_SECRET} is empty in Caddy's environment"},
		{"an unknown limit", "base_url https://app.example.com\n" + outbox + "limits {\nper_moon 1 1m\n}", `limits: unknown subdirective "per_moon"`},
		{"duplicate subdirective", "base_url https://app.example.com\nbase_url https://b.example.com\n" + outbox, `duplicate subdirective "base_url"`},
		{"duplicate in smtp", smtp("from a@example.com\nfrom b@example.com"), `smtp: duplicate subdirective "from"`},
		{"empty env in a client secret", "base_url https://app.example.com\n" + outbox + "client shop {\nsecret {env.MAILGATE_UNSET_SECRET}\nscopes magic_link\n}", "client shop: secret {env.MAILGATE_UNSET_SECRET} is empty in Caddy's environment"},
		{"empty env in the SMTP password", smtp("username login@example.com\npassword {env.MAILGATE_UNSET_SECRET}\nfrom login@example.com"), "smtp password {env.MAILGATE_UNSET_SECRET} is empty in Caddy's environment"},
		{"bad allowed email", "base_url https://app.example.com\n" + outbox + "allow email not-an-address", `allow email "not-an-address"`},
		{"bad allow kind", "base_url https://app.example.com\n" + outbox + "allow user alice", `allow "user"`},
		{"wildcard inside a domain", "base_url https://app.example.com\n" + outbox + "allow domain *example.com", `allow domain "*example.com"`},
		{"wildcard in the middle", "base_url https://app.example.com\n" + outbox + "allow domain mail.*.example.com", `or *.domain for every subdomain`},
		{"bad duration", "base_url https://app.example.com\n" + outbox + "link_ttl soon", `link_ttl "soon"`},
		{"tiny store", "base_url https://app.example.com\n" + outbox + "store memory {\nmax_memory 10KB\n}", "max_memory 10000 bytes"},
		{"unknown store", "base_url https://app.example.com\n" + outbox + "store disk", `store "disk"`},
		{"bad realm", "realm ../etc\nbase_url https://app.example.com\n" + outbox, `realm "../etc"`},
		{"client without secret", "base_url https://app.example.com\n" + outbox + "client shop {\nscopes login_email\n}", `client "shop": a secret or secret_hash is required`},
		{"client with unknown scope", "base_url https://app.example.com\n" + outbox + "client shop {\nsecret 0123456789abcdef\nscopes admin\n}", `unknown scope "admin"`},
		{"client redirect over http", "base_url https://app.example.com\n" + outbox + "client shop {\nsecret 0123456789abcdef\nredirect_uri http://shop.example.com/cb\n}", `redirect_uri "http://shop.example.com/cb"`},
		{"duplicate in client", "base_url https://app.example.com\n" + outbox + "client shop {\ndpop required\ndpop allowed\n}", `client shop: duplicate subdirective "dpop"`},
		{"locale negotiate neither on nor off", "base_url https://app.example.com\n" + outbox + "locale nl-BE {\nnegotiate sometimes\n}", `locale negotiate "sometimes": use on or off`},
		{"locale without a tag", "base_url https://app.example.com\n" + outbox + "locale", "wrong argument count"},
		{"unknown in locale", "base_url https://app.example.com\n" + outbox + "locale nl-BE {\nfallback en-GB\n}", `locale: unknown subdirective "fallback"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := validate(t, c.body)
			if err == nil {
				t.Fatalf("accepted:\n%s", c.body)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func TestConfigAccepted(t *testing.T) {
	t.Setenv("SMTP_PASSWORD", "smtp-secret")
	t.Setenv("SHOP_SECRET", "0123456789abcdef")
	for name, body := range map[string]string{
		"outbox on localhost":    "base_url http://localhost:8080\n" + outbox,
		"tls none to loopback":   "base_url https://app.example.com\nsmtp 127.0.0.1:25 {\ntls none\nfrom login@example.com\n}",
		"tls none with insecure": "base_url https://app.example.com\nsmtp relay.internal:25 {\ntls none\ninsecure\nfrom login@example.com\n}",
		"everything": `realm staff
base_url https://app.example.com
prefix /auth
site_name "Example"
time_zone Europe/Brussels
locale nl-be {
	negotiate off
}
allow email alice@example.com bob@example.com
allow domain example.com *.corp.example
session_ttl 8h
session_idle 30m
assertion {
	header X-Auth-Assertion
	audience https://app.example.com/app
	ttl 2m
}
session_cache 200000
link_ttl 10m
smtp smtp.example.com:465 {
	tls tls
	username login@example.com
	password {env.SMTP_PASSWORD}
	from "Example <login@example.com>"
	dial_timeout 5s
	timeout 20s
	local_name mail.example.com
}
store memory {
	max_memory 16MiB
}
identity_headers {
	user X-User
	email X-Email
	name X-Name
}
access_token_ttl 2m
limits {
	mails_per_address 3 10m
	requests_per_ip 50 15m
	requests_per_client 1000 1h
	failures_per_ip 10 5m
}
project 5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77 {
	name "The Game"
	callback_url https://game.example.com/cb https://game.example.com/other
	error_callback_url https://game.example.com/error
	cors_origin https://game.example.com http://localhost:3000
	custom_payload
	token_ttl 2h
}
client shop {
	secret {env.SHOP_SECRET}
	redirect_uri https://shop.example.com/callback https://shop.example.com/other
	dpop allowed
	force_create
	scopes login_email magic_link
}
client crm {
	secret_hash $2b$04$abcdefghijklmnopqrstuu5sNUrVbVLQw0bJUZqwlM7Gyk9aZ0ReK
	scopes magic_link
}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := validate(t, body); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

// TestDocumentedCaddyfiles checks every Caddyfile snippet in the README and
// docs/api.md as an operator would use it: pasted as is, it is what `caddy
// fmt` prints (else Caddy warns at every start), and it validates (every
// subdirective known, every value accepted), so a renamed subdirective or a
// changed rule cannot leave the docs behind.
func TestDocumentedCaddyfiles(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	// The secrets the snippets take from the environment.
	for _, v := range []string{"SMTP_PASSWORD", "SHOP_SECRET", "CRM_SECRET", "HR_SECRET"} {
		t.Setenv(v, "documented-secret-"+v)
	}
	for _, doc := range []string{"../README.md", "../docs/api.md", "../docs/email-codes.md", "../docs/email-links.md", "../docs/assertion.md"} {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		blocks := strings.Split(string(raw), "```caddyfile\n")[1:]
		if len(blocks) == 0 {
			t.Errorf("%s has no Caddyfile snippets", doc)
		}
		for _, b := range blocks {
			snippet, _, _ := strings.Cut(b, "```")
			if formatted := string(caddyfile.Format([]byte(snippet))); formatted != snippet {
				t.Errorf("%s: a snippet is not as caddy fmt prints it:\n%s\nwant:\n%s", doc, snippet, formatted)
			}
			site := snippet
			if strings.HasPrefix(snippet, "mailgate") {
				site = "http://localhost:8080 {\n" + snippet + "}\n"
			}
			cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(site), nil)
			if err != nil {
				t.Errorf("%s: a snippet does not parse: %v\n%s", doc, err, snippet)
				continue
			}
			if strings.Contains(snippet, "store redis") {
				// Parsed and checked above; validating would dial the
				// documented Redis host (TestRedisStoreInCaddy runs one).
				continue
			}
			var cfg caddy.Config
			if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
				t.Fatal(err)
			}
			if err := caddy.Validate(&cfg); err != nil {
				t.Errorf("%s: a snippet does not validate: %v\n%s", doc, err, snippet)
			}
		}
	}
}

// TestDefaults pins the defaults that security depends on.
func TestDefaults(t *testing.T) {
	m := &Mailgate{}
	if err := m.applyDefaults(); err != nil {
		t.Fatal(err)
	}
	// NIST SP 800-63B limits out-of-band secrets to 10 minutes.
	if time.Duration(m.LinkTTL) != 10*time.Minute {
		t.Errorf("link_ttl defaults to %s, want 10m", time.Duration(m.LinkTTL))
	}
	if time.Duration(m.SessionTTL) != 12*time.Hour || m.Prefix != "/.mailgate" || m.Store.MaxMemory != 64<<20 {
		t.Errorf("defaults: session_ttl %s, prefix %q, max_memory %d", time.Duration(m.SessionTTL), m.Prefix, m.Store.MaxMemory)
	}
	if m.SessionCache != 65536 {
		t.Errorf("session_cache defaults to %d, want 65536", m.SessionCache)
	}
	if time.Duration(m.KeyRotation) != 30*24*time.Hour {
		t.Errorf("key_rotation defaults to %s, want 720h", time.Duration(m.KeyRotation))
	}
	// British English, unless the visitor's browser prefers a language
	// mailgate writes.
	if m.Locale.Default != "en-GB" || !m.Locale.negotiate() {
		t.Errorf("locale defaults to %q, negotiated: %v", m.Locale.Default, m.Locale.negotiate())
	}
	// Without a limits block, the documented limits hold.
	l := m.Limits.linkLimits()
	if l.PerAddress != (limit.Rule{Max: 5, Window: 15 * time.Minute}) || l.PerIP != (limit.Rule{Max: 20, Window: 15 * time.Minute}) ||
		l.PerClient != (limit.Rule{Max: 300, Window: 15 * time.Minute}) {
		t.Errorf("default limits: %+v", l)
	}
	// A block that sets one limit keeps the others' defaults.
	m.Limits = &LimitsConfig{RequestsPerIP: &RateLimit{Max: 7, Window: caddy.Duration(time.Minute)}}
	if l := m.Limits.linkLimits(); l.PerIP.Max != 7 || l.PerAddress.Max != 5 {
		t.Errorf("one limit set: %+v", l)
	}
}

// adaptExample is Caddyfile.example as Caddy's JSON config.
func adaptExample(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestExampleListensOnThisMachineOnly: the demo config, run on a laptop,
// must not open a login page to the network.
func TestExampleListensOnThisMachineOnly(t *testing.T) {
	cfg := adaptExample(t)
	var parsed struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfg, &parsed); err != nil {
		t.Fatal(err)
	}
	if len(parsed.Apps.HTTP.Servers) == 0 {
		t.Fatal("the example has no server")
	}
	for name, srv := range parsed.Apps.HTTP.Servers {
		for _, l := range srv.Listen {
			if !strings.HasPrefix(l, "127.0.0.1:") {
				t.Errorf("server %s listens on %s, not on 127.0.0.1 only", name, l)
			}
		}
	}
}

// TestValueErrorsCarryTheLine: what can be checked without the environment
// is checked when the Caddyfile is parsed, so the error names the file and
// line, not only the value after Caddy's whole module chain.
func TestValueErrorsCarryTheLine(t *testing.T) {
	for _, c := range []struct{ name, line, want string }{
		{"base_url shape", "base_url https://app.example.com/app", "origin only"},
		{"prefix", "prefix login", `prefix "login"`},
		{"prefix with a wildcard", "prefix /{who}", `prefix "/{who}"`},
		{"prefix with a space", `prefix "/my login"`, `prefix "/my login"`},
		{"realm", "realm ../etc", `realm "../etc"`},
		{"time_zone not a zone", "time_zone Mars/Olympus", `time_zone "Mars/Olympus": not an IANA time zone name`},
		{"session_ttl out of range", "session_ttl 30s", "session_ttl 30s"},
		{"session_ttl over 30 days", "session_ttl 800h", "session_ttl 800h0m0s: must be between 1m and 720h"},
		{"key_rotation too short", "key_rotation 30m", "key_rotation 30m0s: must be at least 1h"},
		{"project id not a UUID", "project game {\ncallback_url https://game.example.com/cb\n}", `project "game": must be a UUID`},
		{"project without a callback", "project 5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77 {\ncors_origin https://game.example.com\n}", "needs at least one callback_url"},
		{"project callback over http", "project 5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77 {\ncallback_url http://game.example.com/cb\n}", "must use https"},
		{"project cors origin with a path", "project 5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77 {\ncallback_url https://game.example.com/cb\ncors_origin https://game.example.com/app\n}", "must be an origin"},
		{"project token_ttl too long", "project 5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77 {\ncallback_url https://game.example.com/cb\ntoken_ttl 800h\n}", "token_ttl 800h0m0s"},
		{"session_cache too small", "session_cache 10", "session_cache 10: must be between 1024 and 16777216"},
		{"session_cache not a number", "session_cache lots", `session_cache "lots": not a whole number`},
		{"link_ttl out of range", "link_ttl 48h", "link_ttl 48h0m0s"},
		{"smtp tls mode", "smtp smtp.example.com:587 {\ntls maybe\nfrom login@example.com\n}", `smtp tls "maybe"`},
		{"smtp local_name", "smtp smtp.example.com:587 {\nlocal_name [not-an-ip]\nfrom login@example.com\n}", `smtp local_name "[not-an-ip]"`},
		{"unknown scope", "client shop {\nsecret x\nscopes everything\n}", `unknown scope "everything"`},
		{"client without a secret", "client shop {\nscopes login_email\n}", `client "shop": a secret or secret_hash is required`},
		{"sign-in client origin with a path", "client kiosk {\nsign_in\ncors_origin https://kiosk.example.com/app\n}", "must be an origin"},
		{"persistent_session_ttl under session_ttl", "persistent_session_ttl 1h", "persistent_session_ttl 1h0m0s: must be between session_ttl (12h0m0s) and 720h"},
		{"password_hashing_memory too small", "password_hashing_memory 1MiB", "must be at least 19MiB"},
		{"redirect uri over http", "client shop {\nsecret x\nredirect_uri http://shop.example.com/cb\n}", "must use https"},
		{"tiny store", "store memory {\nmax_memory 1MiB\n}", "must be at least 2MiB"},
		{"locale not supported", "locale fr-FR", `locale "fr-FR": use one of en-GB, nl-BE, nl-NL`},
		{"locale not a locale", "locale dutch", `locale "dutch": use one of en-GB, nl-BE, nl-NL`},
		{"session_idle too short", "session_idle 1m", "session_idle 1m0s: must be between 2m and 720h"},
		{"assertion neither off nor a block", "assertion maybe", "use `assertion off` or an assertion block"},
		{"assertion ttl over 5m", "assertion {\nttl 10m\n}", "assertion ttl 10m0s: must be between 10s and 5m"},
		{"assertion header not a name", "assertion {\nheader \"Mailgate Assertion\"\n}", `assertion header "Mailgate Assertion": not a header name`},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The line at fault is the third of the file: after the site
			// and the directive.
			caddyfile := "http://localhost:8080 {\n\tmailgate {\n" + c.line + "\noutbox ./mailgate-outbox\n\t}\n}\n"
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Caddyfile:") {
				t.Fatalf("adapting: %v; want an error naming %q with the Caddyfile's line", err, c.want)
			}
			// A one-line subdirective is named by its line; a block by the
			// line that closes it, where its check runs.
			if want := fmt.Sprintf("at Caddyfile:%d", 3+strings.Count(c.line, "\n")); !strings.HasSuffix(err.Error(), want) {
				t.Fatalf("the error does not name %q: %v", want, err)
			}
		})
	}
	// What a block lacks is named by the line that closes it.
	missing := "http://localhost:8080 {\n\tmailgate {\noutbox ./mailgate-outbox\n\t}\n}\n"
	if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(missing), nil); err == nil || !strings.Contains(err.Error(), "base_url is required") || !strings.HasSuffix(err.Error(), "at Caddyfile:4") {
		t.Fatalf("missing base_url: %v; want base_url is required, at Caddyfile:4", err)
	}
	both := "http://localhost:8080 {\n\tmailgate {\nbase_url http://localhost:8080\noutbox ./o\nsmtp 127.0.0.1:25 {\nfrom a@example.com\n}\n\t}\n}\n"
	if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(both), nil); err == nil || !strings.Contains(err.Error(), "both smtp and outbox") || !strings.Contains(err.Error(), "Caddyfile:") {
		t.Fatalf("both smtp and outbox: %v", err)
	}
}

// TestExampleSignedInPageLooksLikeMailgate: the demo's protected page uses
// mailgate's stylesheet, fits a phone, names the person and offers a way out.
func TestExampleSignedInPageLooksLikeMailgate(t *testing.T) {
	cfg := adaptExample(t)
	for _, want := range []string{
		`name=\"viewport\"`, `href=\"/.mailgate/assets/style.css\"`, `{http.auth.user.email}`,
		`action=\"/.mailgate/logout\"`, `class=\"card\"`,
	} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("the demo's signed-in page lacks %s", want)
		}
	}
}

// TestProjectIDsAreCanonical: a JSON config's project ids are read as
// UUIDs, so two spellings of one id are one project, configured twice.
func TestProjectIDsAreCanonical(t *testing.T) {
	m := &Mailgate{Projects: []ProjectConfig{
		{ID: "5B7C3A1E-6C1D-4D1F-9A51-3C1F0E9A2B77", CallbackURLs: []string{"https://game.example.com/cb"}},
	}}
	if err := m.applyDefaults(); err != nil {
		t.Fatal(err)
	}
	if p := m.Projects[0]; p.ID != "5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77" || time.Duration(p.TokenTTL) != time.Hour {
		t.Fatalf("project %+v", p)
	}
	m.Projects = append(m.Projects, ProjectConfig{ID: "5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77", CallbackURLs: []string{"https://game.example.com/cb"}})
	if err := m.applyDefaults(); err == nil || !strings.Contains(err.Error(), "configured twice") {
		t.Fatalf("a project configured twice: %v", err)
	}
}

// TestLocaleConfigFromJSON: a JSON config, which skips the Caddyfile's
// checks, gets the same: the tag in any case, negotiation turned off only
// when said so, and an unsupported locale refused by name.
func TestLocaleConfigFromJSON(t *testing.T) {
	for raw, want := range map[string]LocaleConfig{
		`{}`:                             {Default: "en-GB"},
		`{"locale":{"default":"nl-be"}}`: {Default: "nl-BE"},
		`{"locale":{"negotiate":false}}`: {Default: "en-GB", Negotiate: new(bool)},
		`{"locale":{"default":"NL-nl","negotiate":true}}`: {Default: "nl-NL"},
	} {
		var m Mailgate
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatal(err)
		}
		if err := m.applyDefaults(); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if m.Locale.Default != want.Default || m.Locale.negotiate() != want.negotiate() {
			t.Errorf("%s: locale %q, negotiated %v; want %q, %v", raw, m.Locale.Default, m.Locale.negotiate(), want.Default, want.negotiate())
		}
	}
	m := Mailgate{Locale: &LocaleConfig{Default: "fr-FR"}}
	if err := m.applyDefaults(); err == nil || !strings.Contains(err.Error(), `locale "fr-FR": use one of en-GB, nl-BE, nl-NL`) {
		t.Fatalf("an unsupported locale: %v", err)
	}
}
