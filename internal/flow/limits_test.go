package flow

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/limit"
)

// TestAddressLimitIsSilent: over the per-address limit the browser is
// answered as if the mail went out, and none does; after the window it does
// again.
func TestAddressLimitIsSilent(t *testing.T) {
	f := newFixture(t)
	f.flow.Limits.PerAddress = limit.Rule{Max: 2, Window: 15 * time.Minute}
	obs := &recorder{}
	f.flow.Observer = obs
	ctx := context.Background()
	for i := range 3 {
		// From different IPs: the address limit holds whoever asks.
		who := Requester{IP: "192.0.2." + string(rune('1'+i))}
		if err := f.flow.Request(ctx, who, "alice@example.com", "/", ""); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	if limited := obs.limited; len(f.out.letters) != 2 || len(limited) != 1 || limited[0] != "mails_per_address" {
		t.Fatalf("%d mails, limited %v; want 2 and one silent refusal", len(f.out.letters), limited)
	}
	f.now = f.now.Add(15 * time.Minute)
	_ = f.flow.Request(ctx, browserAt, "alice@example.com", "/", "")
	if len(f.out.letters) != 3 {
		t.Fatal("no mail after the window ended")
	}
}

// TestIPLimitIsTold: over the per-IP limit the requester is told how long
// to wait, whatever address it asks for; other IPs are not affected, and an
// IPv6 host counts per /64.
func TestIPLimitIsTold(t *testing.T) {
	f := newFixture(t)
	f.flow.Limits.PerIP = limit.Rule{Max: 2, Window: 15 * time.Minute}
	ctx := context.Background()
	v6 := func(host string) Requester { return Requester{IP: "2001:db8:0:1::" + host} }
	_ = f.flow.Request(ctx, v6("1"), "alice@example.com", "/", "")
	_ = f.flow.Request(ctx, v6("2"), "not an address", "/", "")
	f.now = f.now.Add(5 * time.Minute)
	var exceeded *limit.ExceededError
	if err := f.flow.Request(ctx, v6("3"), "carol@corp.example", "/", ""); !errors.As(err, &exceeded) || exceeded.RetryAfter.Round(time.Second) != 10*time.Minute {
		t.Fatalf("third request from one /64: %v", err)
	}
	if err := f.flow.Request(ctx, browserAt, "carol@corp.example", "/", ""); err != nil {
		t.Fatalf("another IP: %v", err)
	}
	if len(f.out.letters) != 2 {
		t.Fatalf("%d mails, want 2", len(f.out.letters))
	}
}

// TestClientLimits: an app over its own limit, or asking too often for one
// address, is told to wait.
func TestClientLimits(t *testing.T) {
	f := newFixture(t)
	f.flow.Limits.PerClient = limit.Rule{Max: 3, Window: time.Minute}
	f.flow.Limits.PerAddress = limit.Rule{Max: 2, Window: 15 * time.Minute}
	ctx := context.Background()
	alice, _ := f.flow.Users.EnsureByEmail(ctx, "alice@example.com")
	carol, _ := f.flow.Users.EnsureByEmail(ctx, "carol@corp.example")
	login := ClientLogin{ClientID: "shop", RedirectURI: "https://shop.example.com/cb"}
	var exceeded *limit.ExceededError
	for i, c := range []struct {
		user    string
		limited string
	}{{alice.ID, ""}, {alice.ID, ""}, {alice.ID, "mails_per_address"}, {carol.ID, "requests_per_client"}} {
		u := alice
		if c.user == carol.ID {
			u = carol
		}
		err := f.flow.RequestForClient(ctx, u, "", login)
		if c.limited == "" && err != nil || c.limited != "" && (!errors.As(err, &exceeded) || exceeded.Rule != c.limited) {
			t.Fatalf("call %d: %v, want limited by %q", i+1, err, c.limited)
		}
	}
	if len(f.out.letters) != 2 {
		t.Fatalf("%d mails, want 2", len(f.out.letters))
	}
}
