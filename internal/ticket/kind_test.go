package ticket

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingStore remembers every key and value written, to check that no
// secret reaches the store.
type recordingStore struct {
	Store
	written []string
}

func (r *recordingStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	r.written = append(r.written, key, string(value))
	return r.Store.Put(ctx, key, value, ttl)
}

func (r *recordingStore) PutOwned(ctx context.Context, owner, key string, value []byte, ttl time.Duration) error {
	r.written = append(r.written, owner, key, string(value))
	return r.Store.PutOwned(ctx, owner, key, value, ttl)
}

func TestSecretHas256Bits(t *testing.T) {
	s := NewSecret()
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) != 32 {
		t.Fatalf("secret %q: %d bytes, err %v; want 32 bytes base64url", s, len(raw), err)
	}
	if NewSecret() == s {
		t.Fatal("two secrets are equal")
	}
}

func TestIssueRedeemOnce(t *testing.T) {
	ctx := context.Background()
	tk := Kind[string]{Store: newStore(t, time.Now), Name: "link"}
	secret, err := tk.Issue(ctx, "", "payload", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tk.Redeem(ctx, secret)
	if err != nil || got != "payload" {
		t.Fatalf("redeem = %q, %v", got, err)
	}
	if _, err := tk.Redeem(ctx, secret); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second redeem err = %v, want ErrNotFound", err)
	}
	if _, err := tk.Redeem(ctx, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty secret err = %v, want ErrNotFound", err)
	}
}

func TestStoreNeverSeesSecretOrOwner(t *testing.T) {
	ctx := context.Background()
	rec := &recordingStore{Store: newStore(t, time.Now)}
	tk := Kind[string]{Store: rec, Name: "link"}
	secret, err := tk.Issue(ctx, "alice@example.com", "v", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range rec.written {
		if strings.Contains(w, secret) || strings.Contains(w, "alice") {
			t.Fatalf("store received %q, which holds the secret or the owner", w)
		}
	}
}

func TestNewTicketSupersedesOwnersPrevious(t *testing.T) {
	ctx := context.Background()
	tk := Kind[string]{Store: newStore(t, time.Now), Name: "link"}
	first, _ := tk.Issue(ctx, "alice@example.com", "1", time.Minute)
	other, _ := tk.Issue(ctx, "bob@example.com", "b", time.Minute)
	second, _ := tk.Issue(ctx, "alice@example.com", "2", time.Minute)
	if _, err := tk.Redeem(ctx, first); !errors.Is(err, ErrNotFound) {
		t.Fatalf("superseded ticket: err = %v, want ErrNotFound", err)
	}
	if got, err := tk.Redeem(ctx, second); err != nil || got != "2" {
		t.Fatalf("new ticket = %q, %v", got, err)
	}
	if _, err := tk.Redeem(ctx, other); err != nil {
		t.Fatalf("another owner's ticket was dropped: %v", err)
	}
}

func TestDrop(t *testing.T) {
	ctx := context.Background()
	tk := Kind[string]{Store: newStore(t, time.Now), Name: "link"}
	s, _ := tk.Issue(ctx, "", "v", time.Minute)
	if err := tk.Drop(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Redeem(ctx, s); !errors.Is(err, ErrNotFound) {
		t.Fatal("dropped ticket still redeemable")
	}
}

// TestConcurrentIssuesLeaveOneLiveTicket: of many tickets issued at once to
// one owner, exactly one is live afterwards ("one live link per user").
func TestConcurrentIssuesLeaveOneLiveTicket(t *testing.T) {
	ctx := context.Background()
	tk := Kind[string]{Store: newStore(t, time.Now), Name: "link"}
	const n = 50
	secrets := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range secrets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			s, err := tk.Issue(ctx, "alice@example.com", "v", time.Minute)
			if err != nil {
				t.Error(err)
			}
			secrets[i] = s
		}()
	}
	close(start)
	wg.Wait()
	live := 0
	for _, s := range secrets {
		if _, err := tk.Peek(ctx, s); err == nil {
			live++
		}
	}
	if live != 1 {
		t.Fatalf("%d of %d concurrently issued tickets are live, want 1", live, n)
	}
}

// TestKindCarriesItsType: the payload comes back as the type it went in as,
// and a stored value that is not that type is an error, not a zero value.
func TestKindCarriesItsType(t *testing.T) {
	ctx := context.Background()
	type login struct {
		Email  string `json:"email"`
		Return string `json:"return"`
	}
	store := newStore(t, time.Now)
	links := Kind[login]{Store: store, Name: "link"}
	secret, err := links.Issue(ctx, "", login{Email: "alice@example.com", Return: "/docs"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := links.Peek(ctx, secret); err != nil || got.Return != "/docs" {
		t.Fatalf("Peek = %+v, %v", got, err)
	}
	if got, err := links.Redeem(ctx, secret); err != nil || got.Email != "alice@example.com" {
		t.Fatalf("Redeem = %+v, %v", got, err)
	}
	other := Kind[string]{Store: store, Name: "link"}
	s, _ := other.Issue(ctx, "", "not a login", time.Minute)
	if _, err := links.Redeem(ctx, s); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("a value of another type: err = %v, want a decoding error", err)
	}
}
