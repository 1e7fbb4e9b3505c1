package caddymodule

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestConfirmOnFailingStorageKeepsTheLink: the first sign-in of an address
// writes its user to Caddy's storage. When the storage takes no writes (a
// read-only mount) or stops taking them midway (a disk that fills up), the
// confirmation answers 503 and starts no session, and the same link, pressed
// again once the storage is back, signs the person in. What a failed write
// leaves behind is harmless: no user record the address does not lead to,
// and no lock file that would hold up later sign-ins.
func TestConfirmOnFailingStorageKeepsTheLink(t *testing.T) {
	e := startCaddyWith(t, func(e *env) siteConfig {
		return siteConfig{Storage: "mailgate_test_faulty " + filepath.Join(e.dir, "storage")}
	})
	storage := filepath.Join(e.dir, "storage")
	failsThenWorks := func(who string, fault func(op, key string) error) {
		t.Helper()
		b := e.browser(t)
		if r := b.requestLink(who, "/"); r.StatusCode != http.StatusOK {
			t.Fatalf("requesting a link for %s: %s", who, r.Status)
		}
		link := e.mailedLink(t, who)
		failStorage(t, fault)
		if r := b.confirm(link); r.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s confirming while the storage fails: %s, want 503", who, r.Status)
		}
		if b.cookie("__Host-mailgate") != "" {
			t.Fatalf("%s got a session from a confirmation that failed", who)
		}
		storageFault.Store(nil)
		if r := b.confirm(link); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s pressing the same link once the storage is back: %s %s", who, r.Status, r.body)
		}
		if r := b.get("/"); r.StatusCode != http.StatusOK || r.body != "hello "+who {
			t.Fatalf("%s after signing in: %s %q", who, r.Status, r.body)
		}
	}

	failsThenWorks("dave@corp.example", func(string, string) error { return errReadOnly })
	var stored atomic.Int32
	failsThenWorks("erin@corp.example", func(op, key string) error {
		if op == "Store" && strings.HasPrefix(key, "mailgate/") && stored.Add(1) > 1 {
			return errors.New("no space left on device")
		}
		return nil
	})

	// Every user record is one an address leads to.
	records, _ := filepath.Glob(filepath.Join(storage, "mailgate/default/users/*.json"))
	indexes, _ := filepath.Glob(filepath.Join(storage, "mailgate/default/users-by-email/*"))
	indexed := map[string]bool{}
	for _, path := range indexes {
		id, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		indexed[string(id)] = true
	}
	if len(records) != 2 {
		t.Errorf("%d user records for 2 people: %v", len(records), records)
	}
	for _, path := range records {
		if id := strings.TrimSuffix(filepath.Base(path), ".json"); !indexed[id] {
			t.Errorf("user record %s: no address leads to it", id)
		}
	}
	if locks, _ := filepath.Glob(filepath.Join(storage, "locks/*")); len(locks) != 0 {
		t.Errorf("lock files left behind: %v", locks)
	}
}
