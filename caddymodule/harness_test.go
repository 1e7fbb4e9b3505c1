package caddymodule

// The tests in this package that start Caddy share one Caddy instance per
// process (Caddy is a process-wide singleton), so none of them may run in
// parallel. They fail, never skip, when Caddy cannot start.

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/testcert"
	"github.com/mailgate/caddy-mailgate/internal/testsmtp"
)

// env is the running Caddy and the real parts around it.
type env struct {
	dir       string
	adminPort int
	httpPort  int
	httpsPort int
	base      string
	// origin is base_url, when the instance is reached at another base
	// (the second instance of a cluster): what a browser's form posts send
	// as Origin behind the cluster's one address.
	origin   string
	upstream *recorder
	smtp     *testsmtp.Server
	roots    *x509.CertPool
}

// recorder is the upstream app: it records the headers of every request,
// and the forms posted to it directly (as an app's redirect URI).
type recorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	reqs  []http.Header
	posts []url.Values
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Header.Clone())
	if req.Method == http.MethodPost && req.ParseForm() == nil {
		r.posts = append(r.posts, req.PostForm)
	}
	r.mu.Unlock()
	fmt.Fprintf(w, "hello %s", req.Header.Get("Remote-Email"))
}

func (r *recorder) lastPost() url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.posts) == 0 {
		return nil
	}
	return r.posts[len(r.posts)-1]
}

func (r *recorder) last(t *testing.T) http.Header {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		t.Fatal("the upstream received no request")
	}
	return r.reqs[len(r.reqs)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// shopSecret is the secret of the test's API client "shop", and crmSecret
// that of "crm", which is configured by its hash.
const (
	shopSecret = "shop-secret-0123456789"
	crmSecret  = "crm-secret-0123456789"
)

// crmSecretHash is what an operator would paste from caddy hash-password.
var crmSecretHash = password.New(crmSecret).String()

// siteConfig is what a test may vary in the Caddyfile.
type siteConfig struct {
	SiteName string
	SMTPAddr string
	// Global, Site and Mailgate are extra lines for the global options,
	// the site block and the mailgate block.
	Global, Site, Mailgate string
	// Limits is the mailgate block's limits block. Empty: limits so high
	// that tests which are not about limits never meet them.
	Limits string
	// Allow replaces the mailgate block's allow lines. Empty: alice@example.com
	// and every address at corp.example.
	Allow string
	// Servers are extra lines for the global servers block.
	Servers string
	// Storage is the global storage option. Empty: file_system in the
	// test's folder.
	Storage string
}

// roomyLimits keep the limits out of the way of tests about other things:
// they all ask from 127.0.0.1, often for the same address.
const roomyLimits = `limits {
			mails_per_address 1000000 1m
			requests_per_ip 1000000 1m
			requests_per_client 1000000 1m
			failures_per_ip 1000000 1m
		}`

const caddyfileTemplate = `{
	# A certificate of the test's own: loaded synchronously, unlike tls internal.
	admin localhost:{{.Env.AdminPort}}
	http_port {{.Env.HTTPPort}}
	https_port {{.Env.HTTPSPort}}
	skip_install_trust
	storage {{or .Site.Storage (printf "file_system %s/storage" .Env.Dir)}}
	# Caddy drops headers with '_' unless allowed; an operator who allows
	# one must still not let a client pose as someone through it.
	servers {
		expected_underscore_headers Remote_Email
{{- with .Site.Servers}}
		{{.}}
{{- end}}
	}
{{- with .Site.Global}}
	{{.}}
{{- end}}
}

https://localhost:{{.Env.HTTPSPort}} {
	tls {{.Env.Dir}}/cert.pem {{.Env.Dir}}/key.pem
	mailgate {
		base_url https://localhost:{{.Env.HTTPSPort}}
		site_name "{{.Site.SiteName}}"
{{- if .Site.Allow}}
		{{.Site.Allow}}
{{- else}}
		allow email alice@example.com
		allow domain corp.example
{{- end}}
		link_ttl 15m
		smtp {{.Site.SMTPAddr}} {
			tls none
			username mailer
			password {env.MAILGATE_TEST_SMTP_PASSWORD}
			from "Example <login@example.com>"
		}
		client shop {
			secret {env.MAILGATE_TEST_SHOP_SECRET}
			redirect_uri https://shop.example.com/callback http://{{.Env.Upstream}}/callback
			scopes login_email magic_link
		}
		client crm {
			name "The CRM"
			secret_hash {{.Env.CRMSecretHash}}
			redirect_uri https://crm.example.com/callback
			dpop allowed
			force_create
			scopes magic_link
		}
		{{or .Site.Limits .Env.RoomyLimits}}
{{- with .Site.Mailgate}}
		{{.}}
{{- end}}
	}
{{- with .Site.Site}}
	{{.}}
{{- end}}
	handle /direct {
		respond "direct answer for {http.auth.user.email}"
	}
	reverse_proxy {{.Env.Upstream}}
}
`

// freePorts returns n distinct free ports, keeping each bound until all are
// chosen so that the kernel cannot hand one out twice.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// startCaddy starts Caddy with mailgate from a Caddyfile, in front of a
// recording upstream, mailing through a real SMTP server.
func startCaddy(t *testing.T) *env {
	t.Helper()
	return startCaddyWith(t, func(*env) siteConfig { return siteConfig{} })
}

// logBlock is a `log` block that writes JSON to name in the test's folder,
// at level if not empty: for the global options or a site.
func (e *env) logBlock(name, level string) string {
	b := "log {\n\t\toutput file " + filepath.Join(e.dir, name) + "\n\t\tformat json\n"
	if level != "" {
		b += "\t\tlevel " + level + "\n"
	}
	return b + "\t}"
}

// startCaddyWith starts Caddy with the site config that config returns; it
// gets the environment, to name files in its folder.
func startCaddyWith(t *testing.T, config func(*env) siteConfig) *env {
	t.Helper()
	e := &env{dir: t.TempDir()}
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(e.dir, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(e.dir, "data"))
	t.Setenv("MAILGATE_TEST_SMTP_PASSWORD", "smtp-secret")
	t.Setenv("MAILGATE_TEST_SHOP_SECRET", shopSecret)
	e.upstream = &recorder{}
	e.upstream.srv = httptest.NewServer(e.upstream)
	t.Cleanup(e.upstream.srv.Close)
	e.smtp = testsmtp.Start(t, testsmtp.Options{TLS: "none", Username: "mailer", Password: "smtp-secret"})
	ports := freePorts(t, 3)
	e.adminPort, e.httpPort, e.httpsPort = ports[0], ports[1], ports[2]
	e.base = fmt.Sprintf("https://localhost:%d", e.httpsPort)

	cert := testcert.New(t)
	e.roots = cert.Roots
	for name, pem := range map[string][]byte{"cert.pem": cert.CertPEM, "key.pem": cert.KeyPEM} {
		if err := os.WriteFile(filepath.Join(e.dir, name), pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	e.load(t, config(e))
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping Caddy: %v", err)
		}
		clockOffset.Store(0)
	})
	return e
}

// load starts Caddy with the Caddyfile for site.
func (e *env) load(t *testing.T, site siteConfig) {
	t.Helper()
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(e.caddyfile(t, site), nil)
	if err != nil {
		t.Fatalf("adapting the Caddyfile: %v", err)
	}
	for _, w := range warnings {
		t.Logf("Caddyfile warning: %s", w)
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		t.Fatalf("Caddy did not start: %v", err)
	}
}

func (e *env) caddyfile(t *testing.T, site siteConfig) []byte {
	if site.SiteName == "" {
		site.SiteName = "Example"
	}
	if site.SMTPAddr == "" {
		site.SMTPAddr = e.smtp.Addr
	}
	var buf bytes.Buffer
	err := template.Must(template.New("").Parse(caddyfileTemplate)).Execute(&buf, map[string]any{
		"Env": map[string]any{
			"AdminPort": e.adminPort, "HTTPPort": e.httpPort, "HTTPSPort": e.httpsPort,
			"Dir": e.dir, "Upstream": e.upstream.srv.Listener.Addr().String(),
			"CRMSecretHash": crmSecretHash, "RoomyLimits": roomyLimits,
		},
		"Site": site,
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// reload loads a new Caddyfile through the admin API, as `caddy reload` does.
func (e *env) reload(t *testing.T, site siteConfig) {
	t.Helper()
	if err := e.tryReload(t, site); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

// tryReload is reload for a config Caddy may refuse; the error holds
// Caddy's answer.
func (e *env) tryReload(t *testing.T, site siteConfig) error {
	t.Helper()
	url := fmt.Sprintf("http://localhost:%d/load", e.adminPort)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(e.caddyfile(t, site)))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	return nil
}

// browser is an HTTPS client with a cookie jar that does not follow
// redirects, so each test sees every answer.
type browser struct {
	t      *testing.T
	e      *env
	client *http.Client
}

func (e *env) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, e: e, client: &http.Client{
		Jar:       jar,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: 30 * time.Second,
	}}
}

type response struct {
	*http.Response
	body string
}

func (b *browser) do(req *http.Request) response {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp, string(body)}
}

// get fetches path as a page load (Accept: text/html) with extra headers.
func (b *browser) get(path string, hdr ...string) response {
	req, _ := http.NewRequest(http.MethodGet, b.e.base+path, nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

// post submits a form from one of mailgate's pages, as a browser does.
func (b *browser) post(path string, form map[string]string) response {
	vals := make([]string, 0, len(form))
	for k, v := range form {
		vals = append(vals, k+"="+urlQueryEscape(v))
	}
	req, _ := http.NewRequest(http.MethodPost, b.e.base+path, strings.NewReader(strings.Join(vals, "&")))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", cmp.Or(b.e.origin, b.e.base))
	// Forged proxy headers: mailed links must still be built from base_url.
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-Forwarded-Proto", "http")
	return b.do(req)
}

// withCookie is a request for path that carries the session token, as a
// copy of the cookie would.
func (e *env) withCookie(path, token string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, e.base+path, nil)
	req.AddCookie(&http.Cookie{Name: "__Host-mailgate", Value: token})
	return req
}

func (b *browser) cookie(name string) string {
	for _, c := range b.client.Jar.Cookies(mustURL(b.e.base + "/")) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}
