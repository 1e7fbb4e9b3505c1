package flow

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// fakeProjectTokens signs "token:<project>:<user>:<payload>" and reads back
// the user of any token it is given.
type fakeProjectTokens struct{ signed []string }

func (f *fakeProjectTokens) ProjectToken(project string, u directory.User, payload *string, ttl time.Duration) (string, error) {
	t := "token:" + project + ":" + u.ID
	if payload != nil {
		t += ":" + *payload
	}
	f.signed = append(f.signed, t)
	return t, nil
}

func (f *fakeProjectTokens) VerifyProjectToken(token, project string, ttl time.Duration) (session.UserTokenClaims, error) {
	if token == "forged" {
		return session.UserTokenClaims{}, session.ErrInvalid
	}
	return session.UserTokenClaims{Project: project, UserID: token, IssuedAt: time.Unix(1000, 0)}, nil
}

// fakeRevocations keeps the cutoff of each user's with_logout.
type fakeRevocations map[string]time.Time

func (f fakeRevocations) RevokeUser(_ context.Context, userID string, before time.Time) error {
	f[userID] = before
	return nil
}

func (f fakeRevocations) UserTokenRevoked(userID string, iat time.Time) (bool, error) {
	cut, ok := f[userID]
	return ok && iat.Before(cut), nil
}

type fakeUsersByID map[string]directory.User

func (f fakeUsersByID) ByID(_ context.Context, id string) (directory.User, error) {
	u, ok := f[id]
	if !ok {
		return directory.User{}, directory.ErrNotFound
	}
	return u, nil
}

// A user JWT carries the payload only for a project that takes one, and
// with_logout ends the user's earlier tokens before the new one is signed.
func TestProjectLoginToken(t *testing.T) {
	tokens, revoked := &fakeProjectTokens{}, fakeRevocations{}
	at := time.Unix(2000, 0)
	f := &ProjectLogin{Tokens: tokens, Sessions: revoked, Users: fakeUsersByID{}, Now: func() time.Time { return at }}
	alice := directory.User{ID: "u1", Email: "alice@example.com"}
	ctx := context.Background()
	login := CodeLogin{User: alice, Payload: "level-3"}
	if tok, _ := f.Token(ctx, Project{ID: "p"}, login); tok != "token:p:u1" {
		t.Errorf("without custom_payload: %q", tok)
	}
	if tok, _ := f.Token(ctx, Project{ID: "p", CustomPayload: true}, login); tok != "token:p:u1:level-3" {
		t.Errorf("with custom_payload: %q", tok)
	}
	if len(revoked) != 0 {
		t.Fatalf("revoked %v without with_logout", revoked)
	}
	login.WithLogout = true
	if _, err := f.Token(ctx, Project{ID: "p"}, login); err != nil || !revoked["u1"].Equal(at) {
		t.Fatalf("with_logout: %v, revoked %v", err, revoked)
	}
}

// A user JWT stands while it verifies, no with_logout came after it, and
// its user may still log in.
func TestProjectLoginCheck(t *testing.T) {
	users := fakeUsersByID{
		"u1": {ID: "u1", Email: "alice@example.com"},
		"u2": {ID: "u2", Status: directory.StatusDisabled},
		"u3": {ID: "u3"},
	}
	revoked := fakeRevocations{"u3": time.Unix(1500, 0)}
	f := &ProjectLogin{Tokens: &fakeProjectTokens{}, Sessions: revoked, Users: users, Now: time.Now}
	ctx := context.Background()
	if u, err := f.Check(ctx, "u1", Project{ID: "p"}); err != nil || u.Email != "alice@example.com" {
		t.Errorf("a good token: %v, %+v", err, u)
	}
	for token, want := range map[string]error{
		"forged": session.ErrInvalid, "u2": session.ErrInvalid, "gone": session.ErrInvalid, "u3": session.ErrRevoked,
	} {
		if _, err := f.Check(ctx, token, Project{ID: "p"}); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", token, err, want)
		}
	}
}
