package session

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestAssertionSaysWhoAndIsNoOtherToken: the assertion carries the
// session's identity and sign-in, expires within MaxAssertionTTL and never
// after its session, verifies as an assertion, and is refused as a session,
// as an access token and as a user JWT, even by checks whose issuer and
// audience are the assertion's own.
func TestAssertionSaysWhoAndIsNoOtherToken(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok, _, err := f.m.IssueWith(alice.UserID, IssueOptions{Method: "code"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.m.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	const origin = "https://app.example.com"
	signer := Signer{Ring: f.ring, Issuer: origin, Audience: origin, Now: f.clock.Now}
	a := &Assertions{Signer: signer, TTL: MaxAssertionTTL}
	assertion, exp, err := a.Sign(s)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(f.clock.t.Add(MaxAssertionTTL)) {
		t.Fatalf("exp %v, want now + 5m", exp)
	}
	c, err := signer.Verify(TypAssertion, assertion, MaxAssertionTTL)
	if err != nil {
		t.Fatalf("the assertion does not verify as one: %v", err)
	}
	email, _ := c.Get("email")
	name, _ := c.Get("name")
	sid, _ := c.Get("sid")
	amr, _ := c.Get("amr")
	authTime, _ := c.Get("auth_time")
	var amrs []string
	for _, v := range amr.([]any) {
		amrs = append(amrs, v.(string))
	}
	if c.Subject() != alice.UserID || email != alice.Email || name != alice.Name || sid != s.ID ||
		!slices.Equal(amrs, []string{"otp", "code"}) || authTime != float64(f.clock.t.Unix()) {
		t.Fatalf("claims %v", c.PrivateClaims())
	}

	if _, err := f.m.Verify(ctx, assertion); !errors.Is(err, ErrInvalid) {
		t.Fatalf("the assertion as a session: %v, want ErrInvalid", err)
	}
	for _, aud := range []string{origin, origin + "/.mailgate/api"} {
		apps := &AppTokens{Signer: Signer{Ring: f.ring, Issuer: origin, Audience: aud, Now: f.clock.Now}, TTL: time.Hour}
		if _, err := apps.Verify(assertion); !errors.Is(err, ErrInvalid) {
			t.Fatalf("the assertion as an access token of %s: %v, want ErrInvalid", aud, err)
		}
		if _, err := apps.VerifyProjectToken(assertion, origin, time.Hour); !errors.Is(err, ErrInvalid) {
			t.Fatalf("the assertion as a user JWT: %v, want ErrInvalid", err)
		}
	}

	// Near the session's end, the assertion ends with it.
	f.clock.t = s.Expiry.Add(-time.Minute)
	if _, exp, _ := a.Sign(s); !exp.Equal(s.Expiry) {
		t.Fatalf("an assertion for a session ending in 1m expires at %v, want %v", exp, s.Expiry)
	}
}
