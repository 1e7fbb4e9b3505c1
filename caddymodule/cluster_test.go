package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

// caddyBinary builds this repository's Caddy (./caddy) once per test run:
// the second instance of a cluster runs as its own process.
var caddyBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mailgate-caddy-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "caddy")
	// The tag lets a test set the instance's clock (testclock.go).
	out, err := exec.Command("go", "build", "-tags", "mailgatetest", "-o", bin, "../caddy").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ../caddy: %v\n%s", err, out)
	}
	return bin, nil
})

// startSecondInstance runs the built Caddy as another instance of e's site:
// the same Caddyfile, base_url, storage folder and Redis, on ports of its
// own, as a second machine behind a load balancer would, with its clock
// where this process's clockOffset puts it. It returns a copy of e whose
// base is the new instance, for browsers to talk to it.
func startSecondInstance(t *testing.T, e *env, site siteConfig) *env {
	t.Helper()
	bin, err := caddyBinary()
	if err != nil {
		t.Fatal(err)
	}
	b := *e
	ports := freePorts(t, 3)
	b.adminPort, b.httpPort, b.httpsPort = ports[0], ports[1], ports[2]
	b.base = fmt.Sprintf("https://localhost:%d", b.httpsPort)
	b.origin = e.base
	// The same base_url: links and proofs name the cluster's one origin.
	cfg := strings.Replace(string(b.caddyfile(t, site)), "base_url "+b.base, "base_url "+e.base, 1)
	path := filepath.Join(e.dir, "Caddyfile.b")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(),
		"XDG_CONFIG_HOME="+filepath.Join(e.dir, "config-b"), "XDG_DATA_HOME="+filepath.Join(e.dir, "data-b"),
		"MAILGATE_TEST_SMTP_PASSWORD=smtp-secret", "MAILGATE_TEST_SHOP_SECRET="+shopSecret,
		"MAILGATE_TEST_CLOCK_OFFSET="+time.Duration(clockOffset.Load()).String())
	logFile, err := os.Create(filepath.Join(e.dir, "caddy-b.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
	})
	probe := b.browser(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, b.base+"/.mailgate/jwks.json", nil)
		if resp, err := probe.client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &b
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(e.dir, "caddy-b.log"))
			t.Fatalf("the second instance did not answer within 30s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// on returns a browser that shares b's cookies and talks to instance e.
func (b *browser) on(e *env) *browser { return &browser{t: b.t, e: e, client: b.client} }

// TestTwoInstancesBehaveAsOne: two Caddy processes sharing one Redis and one
// storage folder are one site: a link asked for on A is confirmed on B, a
// code issued on A is exchanged on B, a DPoP proof used on A is refused on
// B, a logout on A is refused on B within 5 seconds, and of 20 concurrent
// confirms of one link, split across both, exactly one wins.
func TestTwoInstancesBehaveAsOne(t *testing.T) {
	srv := redistest.Start(t)
	twoInstancesBehaveAsOne(t, siteConfig{Mailgate: redisStore(srv.Addr())})
}

// twoInstancesBehaveAsOne runs the journey of TestTwoInstancesBehaveAsOne
// on the store site configures (one Redis, a Redis Cluster).
func twoInstancesBehaveAsOne(t *testing.T, site siteConfig) {
	a := startCaddyWith(t, func(*env) siteConfig { return site })
	b := startSecondInstance(t, a, site)

	// A link asked for on A, confirmed on B: the session works on both.
	person := a.browser(t)
	person.requestLink("alice@example.com", "/")
	link := a.mailedLink(t, "alice@example.com")
	if r := person.on(b).confirm(link); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirming A's link on B: %s\n%s", r.Status, r.body)
	}
	cookie := person.cookie("__Host-mailgate")
	for name, inst := range map[string]*env{"A": a, "B": b} {
		if r := person.on(inst).get("/"); r.StatusCode != http.StatusOK {
			t.Fatalf("the session on %s: %s", name, r.Status)
		}
	}

	// An authorization code issued on A is exchanged on B, once.
	key := testdpop.NewKey(t)
	proof := key.Proof(t, "POST", a.base+"/.mailgate/oauth/token", "", now())
	_, tok := a.requestToken(t, shopSecret, proof)
	const callback = "https://shop.example.com/callback"
	if r, body := a.callAPI(t, "/.mailgate/api/v1/login-email", tok.AccessToken, key,
		`{"selector":"email","email":"alice@example.com","redirect_uri":"`+callback+`"}`); r.StatusCode != http.StatusOK {
		t.Fatalf("login-email on A: %s %v", r.Status, body)
	}
	loc := a.browser(t).confirm(a.mailedLink(t, "alice@example.com")).onward(t)
	if loc.Query().Get("code") == "" {
		t.Fatalf("confirm on A sent the browser on to %q", loc)
	}
	exchange := func(inst *env) response {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {callback}}
		req, _ := http.NewRequest(http.MethodPost, inst.base+"/.mailgate/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("shop", shopSecret)
		return inst.browser(t).do(req)
	}
	if r := exchange(b); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "id_token") {
		t.Fatalf("exchanging A's code on B: %s %s", r.Status, r.body)
	}
	if r := exchange(a); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "invalid_grant") {
		t.Fatalf("the same code again, on A: %s %s", r.Status, r.body)
	}

	// The DPoP proof A accepted is a replay on B.
	if r, _ := b.requestToken(t, shopSecret, proof); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "invalid_dpop_proof") {
		t.Fatalf("A's used proof on B: %s %s", r.Status, r.body)
	}

	// Logout on A: B refuses the cookie within 5 seconds.
	person.get("/.mailgate/logout")
	if r := person.post("/.mailgate/logout", map[string]string{"form_token": person.cookie("__Host-mailgate-form")}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout on A: %s", r.Status)
	}
	start := time.Now()
	for {
		r := b.browser(t).do(b.withCookie("/", cookie))
		if r.StatusCode == http.StatusUnauthorized {
			t.Logf("B refused the logged-out session %s after the logout on A", time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("B still answers %s to the logged-out session 5s after the logout on A", r.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// 20 concurrent confirms of one link, half on A, half on B.
	a.browser(t).requestLink("carol@corp.example", "/")
	secret := mustURL(a.mailedLink(t, "carol@corp.example")).Query().Get("t")
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		inst := a
		if i%2 == 1 {
			inst = b
		}
		br := inst.browser(t)
		br.get("/.mailgate/login") // a form token of its own
		wg.Go(func() {
			r := br.post("/.mailgate/link", map[string]string{"t": secret, "form_token": br.cookie("__Host-mailgate-form")})
			if r.StatusCode == http.StatusSeeOther {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d of 20 concurrent confirms across two instances won, want 1", wins.Load())
	}

	// Both instances publish one key ring.
	ja, jb := a.browser(t).get("/.mailgate/jwks.json").body, b.browser(t).get("/.mailgate/jwks.json").body
	var sa, sb any
	if json.Unmarshal([]byte(ja), &sa) != nil || json.Unmarshal([]byte(jb), &sb) != nil || ja != jb {
		t.Fatalf("the instances publish different key rings:\n%s\n%s", ja, jb)
	}
}

// TestRotationAcrossInstances: after `caddy mailgate rotate-keys`, a session
// from before the rotation is valid on both instances, and once the new key
// is active, new sessions on either carry it and are valid on the other.
func TestRotationAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	site := siteConfig{Mailgate: redisStore(srv.Addr())}
	a := startCaddyWith(t, func(*env) siteConfig { return site })
	before := a.browser(t)
	before.login("alice@example.com", "/")
	oldKid := jwkKid(t, a.browser(t).get("/.mailgate/jwks.json").body)

	a.rotateKeys(t, site)
	// A reads the ring at its next refresh; the new key becomes active;
	// B starts then, its clock where A's is.
	clockOffset.Add(int64(keyRefresh))
	a.browser(t).get("/.mailgate/jwks.json")
	clockOffset.Add(int64(keyActivation))
	// The jump of A's clock makes its revocation feed look stale (503)
	// until its next read of the stream, within a second.
	deadline := time.Now().Add(3 * time.Second)
	for before.get("/").StatusCode == http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("A's revocation feed did not catch up with the clock within 3s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b := startSecondInstance(t, a, site)
	after := a.browser(t)
	if token := after.login("bob@corp.example", "/"); strings.Contains(tokenHeader(t, token), oldKid) {
		t.Fatalf("A still signs with the old key after the activation: %s", tokenHeader(t, token))
	}
	onB := a.browser(t).on(b)
	onB.requestLink("carol@corp.example", "/")
	// B's queue is in B's process: wait for its mail to arrive.
	deadline = time.Now().Add(10 * time.Second)
	for a.mailsTo("carol@corp.example") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("B's mail did not arrive within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := onB.confirm(a.mailedLink(t, "carol@corp.example")); r.StatusCode != http.StatusSeeOther ||
		strings.Contains(tokenHeader(t, onB.cookie("__Host-mailgate")), oldKid) {
		t.Fatalf("B's new session: %s, not signed with the new key", r.Status)
	}
	for name, br := range map[string]*browser{"before": before, "after": after, "from B": onB} {
		for inst, e := range map[string]*env{"A": a, "B": b} {
			if r := br.on(e).get("/"); r.StatusCode != http.StatusOK {
				t.Fatalf("the session from %s the rotation on %s: %s", name, inst, r.Status)
			}
		}
	}
}
