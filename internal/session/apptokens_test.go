package session

import (
	"context"
	"crypto"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/mailgate/caddy-mailgate/internal/directory"
)

// TestCodeAccessTokenPassesForNoOtherToken: every token mailgate signs
// with the realm's keys is checked by its own kind's check, and the access
// token of a code exchange passes none of the others, nor any of them its
// check. The ID token check is go-oidc's, which does not look at typ: only
// the audience keeps the access token from passing there.
func TestCodeAccessTokenPassesForNoOtherToken(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const issuer = "https://app.example.com/.mailgate"
	ts := &AppTokens{Signer: Signer{Ring: f.ring, Issuer: issuer, Audience: issuer + "/api", Now: f.clock.Now}, TTL: 5 * time.Minute}
	u := directory.User{ID: alice.UserID, Email: alice.Email, Username: "alice"}
	must := func(tok string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	sessionToken, _, err := f.m.Issue(alice.UserID)
	if err != nil {
		t.Fatal(err)
	}
	// The client and the project share an id: only the tokens' kinds and
	// audiences tell them apart.
	tokens := map[string]string{
		"code access token": must(ts.CodeAccessToken("shop", u.ID, "openid", "")),
		"ID token":          must(ts.IDToken("shop", u, f.clock.t)),
		"user JWT":          must(ts.ProjectToken("shop", u, nil, time.Hour)),
		"session":           sessionToken,
		"API access token":  must(ts.Issue("shop", []string{"login_email"}, "")),
		"magic-link token":  must(ts.UserToken("shop", u, "openid")),
	}

	// An app's resource server checks the code access token as RFC 9068
	// section 4 says: typ at+jwt, iss, and its own audience.
	resource := ts.Signer
	resource.Audience = issuer + "/clients/shop"
	idTokens := oidc.NewVerifier(issuer, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{f.ring.keys.Load().public[f.ring.KeyID()]}},
		&oidc.Config{ClientID: "shop", SupportedSigningAlgs: []string{oidc.EdDSA}, Now: f.clock.Now})
	checks := map[string]func(string) error{
		"code access token": func(tok string) error { _, err := resource.Verify(TypAccessToken, tok, ts.TTL); return err },
		"ID token":          func(tok string) error { _, err := idTokens.Verify(ctx, tok); return err },
		"user JWT":          func(tok string) error { _, err := ts.VerifyProjectToken(tok, "shop", time.Hour); return err },
		"session":           func(tok string) error { _, err := f.m.Verify(ctx, tok); return err },
		"API access token":  func(tok string) error { _, err := ts.Verify(tok); return err },
	}
	for kind, check := range checks {
		if err := check(tokens[kind]); err != nil {
			t.Fatalf("the %s fails its own check: %v; the cases below prove nothing", kind, err)
		}
	}
	for kind, tok := range tokens {
		for checked, check := range checks {
			if kind != checked && (kind == "code access token" || checked == "code access token") && check(tok) == nil {
				t.Errorf("the %s passes the %s check", kind, checked)
			}
		}
	}
}
