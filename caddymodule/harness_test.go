package caddymodule

// The tests in this package that start Caddy share one Caddy instance per
// process (Caddy is a process-wide singleton), so none of them may run in
// parallel. They fail, never skip, when Caddy cannot start.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	gomail "github.com/emersion/go-message/mail"

	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/mail"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/testcert"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
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

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// mailedLink reads the newest message the SMTP server received for to,
// checks its headers, and returns the link from its text part.
func (e *env) mailedLink(t *testing.T, to string) string {
	t.Helper()
	msgs := e.smtp.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if len(m.To) != 1 || m.To[0] != to {
			continue
		}
		r, err := gomail.CreateReader(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		if from, _ := r.Header.AddressList("From"); len(from) != 1 || from[0].Address != "login@example.com" {
			t.Errorf("From = %v", from)
		}
		if rcpt, _ := r.Header.AddressList("To"); len(rcpt) != 1 || rcpt[0].Address != to {
			t.Errorf("To = %v", rcpt)
		}
		if s, _ := r.Header.Subject(); !strings.Contains(s, "Example") {
			t.Errorf("Subject = %q", s)
		}
		if _, err := r.Header.Date(); err != nil {
			t.Errorf("Date: %v", err)
		}
		if id, _ := r.Header.MessageID(); id == "" {
			t.Error("no Message-ID")
		}
		if m.Auth != "mailer" {
			t.Errorf("mail was sent without AUTH (as %q)", m.Auth)
		}
		return textLink(t, r)
	}
	t.Fatalf("no mail to %s among %d messages", to, len(msgs))
	return ""
}

// textLink returns the link in the text part of a parsed mail.
func textLink(t *testing.T, r *gomail.Reader) string {
	t.Helper()
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ct, _, _ := p.Header.(*gomail.InlineHeader).ContentType(); ct != "text/plain" {
			continue
		}
		body, _ := io.ReadAll(p.Body)
		link := regexp.MustCompile(`https://\S+`).FindString(string(body))
		if link == "" {
			t.Fatalf("no link in the text part:\n%s", body)
		}
		return link
	}
	t.Fatal("the message has no text/plain part")
	return ""
}

func (e *env) mailsTo(to string) int {
	n := 0
	for _, m := range e.smtp.Messages() {
		if len(m.To) == 1 && m.To[0] == to {
			n++
		}
	}
	return n
}

// requestLink walks the login form for email and returns the page the
// browser ends on: the form post answers 303 to "check your inbox" (which
// is fetched, as a browser does), or an error page of its own.
func (b *browser) requestLink(email, ret string) response {
	b.t.Helper()
	if r := b.get("/.mailgate/login?return=" + url.QueryEscape(ret)); r.StatusCode != http.StatusOK {
		b.t.Fatalf("login page: %s", r.Status)
	}
	r := b.post("/.mailgate/login/email", map[string]string{
		"email": email, "return": ret, "form_token": b.cookie("__Host-mailgate-form"),
	})
	if r.StatusCode != http.StatusSeeOther {
		return r
	}
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, "/.mailgate/login/sent?") {
		b.t.Fatalf("a link request redirected to %q", loc)
	}
	return b.get(loc)
}

// confirm opens the mailed link and presses the button. A dead link's page
// says so (410) but the button is pressed anyway, as from a page left open
// in a tab, so that the POST's own refusal is what the caller sees.
func (b *browser) confirm(link string) response {
	b.t.Helper()
	u := mustURL(link)
	if r := b.get(u.RequestURI()); r.StatusCode != http.StatusOK && r.StatusCode != http.StatusGone {
		b.t.Fatalf("link page: %s", r.Status)
	}
	return b.post("/.mailgate/link", map[string]string{
		"t": u.Query().Get("t"), "form_token": b.cookie("__Host-mailgate-form"),
	})
}

// login runs the whole journey and returns the session cookie's value.
func (b *browser) login(email, ret string) string {
	b.t.Helper()
	if r := b.requestLink(email, ret); r.StatusCode != http.StatusOK {
		b.t.Fatalf("requesting a link: %s\n%s", r.Status, r.body)
	}
	r := b.confirm(b.e.mailedLink(b.t, email))
	if r.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("confirming the link: %s\n%s", r.Status, r.body)
	}
	return b.cookie("__Host-mailgate")
}

// jwkKid is the kid of the first key of a JWKS.
func jwkKid(t *testing.T, jwks string) string {
	t.Helper()
	var set struct {
		Keys []struct{ Kid string } `json:"keys"`
	}
	if err := json.Unmarshal([]byte(jwks), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS %q: %v", jwks, err)
	}
	return set.Keys[0].Kid
}

// tokenHeader decodes a JWT's header.
func tokenHeader(t *testing.T, token string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// requestCode presses "email me a code" on the login form and follows to
// the code page.
func (b *browser) requestCode(email, ret string) response {
	b.t.Helper()
	page := b.get("/.mailgate/login?return=" + url.QueryEscape(ret))
	if page.StatusCode != http.StatusOK || !strings.Contains(page.body, `name="method" value="code"`) {
		b.t.Fatalf("the login page offers no code: %s\n%s", page.Status, page.body)
	}
	r := b.post("/.mailgate/login/email", map[string]string{
		"email": email, "return": ret, "method": "code", "form_token": b.cookie("__Host-mailgate-form"),
	})
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/.mailgate/login/code?") {
		b.t.Fatalf("asking for a code: %s %q\n%s", r.Status, loc, r.body)
	}
	return b.get(loc)
}

// enterCode posts a code from the code page, as the page's form does.
func (b *browser) enterCode(code, ret string) response {
	b.t.Helper()
	return b.post("/.mailgate/login/code", map[string]string{
		"code": code, "return": ret, "to": "a•••e@example.com", "form_token": b.cookie("__Host-mailgate-form"),
	})
}

// mailedText returns the text part of the newest mail to to.
func (e *env) mailedText(t *testing.T, to string) string {
	t.Helper()
	_, text := e.mailed(t, to)
	return text
}

// mailed is the subject and the text part of the newest mail to to, taken
// apart by a MIME parser.
func (e *env) mailed(t *testing.T, to string) (subject, text string) {
	t.Helper()
	msgs := e.smtp.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if m := msgs[i]; len(m.To) == 1 && m.To[0] == to {
			subject, body := mailPart(t, m.Data, "text/plain")
			return subject, string(body)
		}
	}
	t.Fatalf("no mail to %s", to)
	return "", ""
}

// mailPart is the subject of a raw message and the body of its part of
// content type ctype.
func mailPart(t *testing.T, raw []byte, ctype string) (subject string, body []byte) {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ = r.Header.Subject()
	for {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("no %s part in the mail: %v", ctype, err)
		}
		if h, ok := p.Header.(*gomail.InlineHeader); ok {
			if ct, _, _ := h.ContentType(); ct == ctype {
				body, err := io.ReadAll(p.Body)
				if err != nil {
					t.Fatal(err)
				}
				return subject, body
			}
		}
	}
}

const (
	gameProject  = "5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77"
	twoCallbacks = "0f6f1a43-2b1a-4b6f-8d0e-5a4b1c2d3e4f"
	gameOrigin   = "https://game.example.com"
	gameCallback = "https://game.example.com/auth/callback"
)

// projectsConfig configures a project with one callback URL, CORS and
// custom payloads, and one with two callback URLs and neither.
const projectsConfig = `project ` + gameProject + ` {
			name "The Game"
			callback_url ` + gameCallback + `
			error_callback_url https://game.example.com/auth/error
			cors_origin ` + gameOrigin + `
			custom_payload
		}
		project ` + twoCallbacks + ` {
			callback_url https://a.example.com/cb https://b.example.com/cb
		}`

// codeCall is a call to the code API: method, path under the prefix with
// its query, and a JSON body.
func (e *env) codeCall(t *testing.T, method, pathQuery, body string, hdr ...string) (response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.base+"/.mailgate"+pathQuery, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r := e.browser(t).do(req)
	var out map[string]any
	if r.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal([]byte(r.body), &out); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, pathQuery, r.body, err)
		}
	}
	return r, out
}

// codeError is the error code of an answer in the API's shape.
func codeError(t *testing.T, r response, out map[string]any) string {
	t.Helper()
	e, ok := out["error"].(map[string]any)
	if !ok || e["description"] == "" {
		t.Fatalf("%s: not the API's error shape: %s", r.Status, r.body)
	}
	code, _ := e["code"].(string)
	return code
}

// startCode starts a code login for email and returns the operation id.
func (e *env) startCode(t *testing.T, query, body string) string {
	t.Helper()
	r, out := e.codeCall(t, http.MethodPost, "/login/email/request?projectId="+gameProject+query, body)
	id, _ := out["operation_id"].(string)
	if r.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("start: %s %s", r.Status, r.body)
	}
	return id
}

var subjectCode = regexp.MustCompile(`(?m)^Subject: ([0-9]{6}) `)

// mailedCode is the code of the last mail to to.
func (e *env) mailedCode(t *testing.T, to string) string {
	t.Helper()
	msgs := e.smtp.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].To[0] == to {
			if m := subjectCode.FindSubmatch(msgs[i].Data); m != nil {
				return string(m[1])
			}
		}
	}
	t.Fatalf("no code mailed to %s", to)
	return ""
}

// mailedCodeLink is the link in the text part of the last mail to to.
func (e *env) mailedCodeLink(t *testing.T, to string) string {
	t.Helper()
	msgs := e.smtp.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].To[0] == to {
			r, err := gomail.CreateReader(bytes.NewReader(msgs[i].Data))
			if err != nil {
				t.Fatal(err)
			}
			return textLink(t, r)
		}
	}
	t.Fatalf("no mail to %s", to)
	return ""
}

func (e *env) confirmCode(t *testing.T, email, id, code string) (response, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "operation_id": id, "code": code})
	return e.codeCall(t, http.MethodPost, "/login/email/confirm?projectId="+gameProject, string(body))
}

// logEntries returns the lines of the JSON log file name in the test's
// folder that contain msg.
func (e *env) logEntries(t *testing.T, name, msg string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"msg":"`+msg+`"`) {
			lines = append(lines, line)
		}
	}
	return lines
}

// The login form queues its mail and answers before the mail server has
// it. Every test here that reads mail after a form (e.mailedLink and the
// like read the test SMTP server) first waits for the running mailgate's
// queues to finish what they hold: testsmtp calls settleDeliveries at each
// Messages.
func init() { testsmtp.Settle = settleDeliveries }

// settleTimeout bounds settleDeliveries, so that a queue stuck on a hung
// server fails the test that reads the mail instead of hanging it.
const settleTimeout = 30 * time.Second

// settleDeliveries waits until the queue of every mailgate handler in the
// running config has delivered or given up every mail it took.
func settleDeliveries() {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	for _, q := range runningQueues() {
		_ = q.Flush(ctx)
	}
}

// runningQueues finds the delivery queues of the mailgate handlers in
// Caddy's running config, inside the subroutes the Caddyfile makes.
func runningQueues() []*mail.Queue {
	app, err := caddy.ActiveContext().AppIfConfigured("http")
	if err != nil {
		return nil
	}
	var queues []*mail.Queue
	var walk func(caddyhttp.RouteList)
	walk = func(routes caddyhttp.RouteList) {
		for _, r := range routes {
			for _, h := range r.Handlers {
				switch h := h.(type) {
				case *caddyhttp.Subroute:
					walk(h.Routes)
				case *Mailgate:
					if h.pages == nil {
						continue
					}
					if links, ok := h.pages.Links.(*flow.MagicLink); ok {
						if q, ok := links.Mailer.(*mail.Queue); ok {
							queues = append(queues, q)
						}
					}
				}
			}
		}
	}
	for _, srv := range app.(*caddyhttp.App).Servers {
		walk(srv.Routes)
	}
	return queues
}

// tokenResponse is the token endpoint's answer, success or error.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	Error       string `json:"error"`
}

// requestToken asks the token endpoint for a client_credentials token as the
// shop client, with the given DPoP proofs.
func (e *env) requestToken(t *testing.T, secret string, proofs ...string) (response, tokenResponse) {
	t.Helper()
	return e.clientCredentials(t, "shop", secret, "", proofs...)
}

// clientCredentials asks for a token as client, for scope if not empty.
func (e *env) clientCredentials(t *testing.T, client, secret, scope string, proofs ...string) (response, tokenResponse) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, secret)
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	r := e.browser(t).do(req)
	var body tokenResponse
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("token endpoint answered %s with %q", r.Status, r.body)
	}
	return r, body
}

// callAPI posts JSON to an API endpoint with a DPoP-bound token and a fresh
// proof for that URL, or with a Bearer token when key is the zero Key.
func (e *env) callAPI(t *testing.T, path, token string, key testdpop.Key, body string, hdr ...string) (response, map[string]any) {
	t.Helper()
	u := e.base + path
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	switch {
	case token != "" && key.PrivateKey == nil:
		req.Header.Set("Authorization", "Bearer "+token)
	case token != "":
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", key.Proof(t, "POST", u, token, now()))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r := e.browser(t).do(req)
	var out map[string]any
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatalf("%s answered %s with %q", path, r.Status, r.body)
	}
	return r, out
}

// onward is where the answer that ends an app's login sends the browser on
// to: the refresh target of its page (see web.WriteAuthorizeResponse).
func (r response) onward(t *testing.T) *url.URL {
	t.Helper()
	m := onwardRefresh.FindStringSubmatch(r.body)
	if r.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("the answer does not send the browser on: %s\n%s", r.Status, r.body)
	}
	return mustURL(html.UnescapeString(m[1]))
}

var onwardRefresh = regexp.MustCompile(`<meta http-equiv="refresh" content="0; url=([^"]*)">`)

// exchange trades an authorization code at the token endpoint as client.
func (e *env) exchange(t *testing.T, client, secret, code, redirectURI string) response {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	req, _ := http.NewRequest(http.MethodPost, e.base+"/.mailgate/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, secret)
	return e.browser(t).do(req)
}
