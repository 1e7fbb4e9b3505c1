package admin

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// sessions records RevokeUser, and whether the user still existed then.
type sessions struct {
	users   *directory.Directory
	cutoffs []time.Time
	present []bool
	fail    error
}

func (s *sessions) RevokeUser(ctx context.Context, id string, before time.Time) error {
	if s.fail != nil {
		return s.fail
	}
	_, err := s.users.ByID(ctx, id)
	s.cutoffs, s.present = append(s.cutoffs, before), append(s.present, err == nil)
	return nil
}

// changes records what the Observer was told.
type changes struct {
	flow.Unobserved
	seen []flow.UserChange
}

func (c *changes) UserChanged(_ string, change flow.UserChange, _ string) {
	c.seen = append(c.seen, change)
}

type fixture struct {
	a        *Users
	sessions *sessions
	store    ticket.Store
	obs      *changes
	now      time.Time
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{now: time.Date(2026, 9, 1, 12, 0, 0, 500, time.UTC), obs: &changes{}}
	now := func() time.Time { return f.now }
	store, err := ticket.NewMemory(ticket.MinMemory, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	users := directory.New(memstorage.New(), "mg", now)
	f.sessions, f.store = &sessions{users: users}, store
	f.a = &Users{Directory: users, Sessions: f.sessions, Pending: store, Now: now, Observer: f.obs}
	return f
}

// TestDisableEndsSessionsAndLinksEachTime: a disable ends the sessions of
// the second it happens in and every pending link; repeating it ends them
// again (completing one whose revocation failed) without a second report.
func TestDisableEndsSessionsAndLinksEachTime(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, err := f.a.Create(ctx, directory.NewUser{Email: "ann@example.com"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	f.sessions.fail = errors.New("store full")
	if _, err := f.a.SetStatus(ctx, u.ID, directory.StatusDisabled, "test"); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("a disable whose revocation failed: %v, want ErrIncomplete", err)
	}
	if got, _ := f.a.Get(ctx, u.ID); got.Status != directory.StatusDisabled {
		t.Fatalf("status %s after a disable whose revocation failed, want disabled", got.Status)
	}
	f.sessions.fail = nil
	if _, err := f.a.SetStatus(ctx, u.ID, directory.StatusDisabled, "test"); err != nil {
		t.Fatal(err)
	}
	if len(f.sessions.cutoffs) != 1 || !f.sessions.cutoffs[0].Equal(f.now.Add(time.Second)) {
		t.Fatalf("revocations %v, want one at the next second", f.sessions.cutoffs)
	}
	if cutoff, ok, _ := f.store.RevokedBefore(pendingKeyOf(t, f, "ann@example.com")); !ok || !cutoff.Equal(f.now) {
		t.Fatalf("pending links ended at %v (%v), want %v", cutoff, ok, f.now)
	}
	if len(f.obs.seen) != 2 || f.obs.seen[1] != flow.UserDisabled {
		t.Fatalf("reported %v, want created then disabled once", f.obs.seen)
	}
}

// pendingKeyOf finds the key EndPending used, by ending an address the
// same way and comparing: the key's spelling is flow's business.
func pendingKeyOf(t *testing.T, f *fixture, email string) string {
	t.Helper()
	probe, err := ticket.NewMemory(ticket.MinMemory, func() time.Time { return f.now })
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	rec := &recordingRevocations{Revocations: probe}
	if err := flow.EndPending(context.Background(), rec, email, f.now); err != nil {
		t.Fatal(err)
	}
	return rec.key
}

type recordingRevocations struct {
	ticket.Revocations
	key string
}

func (r *recordingRevocations) RevokeBefore(ctx context.Context, key string, before time.Time, ttl time.Duration) error {
	r.key = key
	return r.Revocations.RevokeBefore(ctx, key, before, ttl)
}

// TestEnableGoesBackToWhereTheUserWas: enabling a user who never signed up
// makes them invited, one who did active.
func TestEnableGoesBackToWhereTheUserWas(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	invited, _ := f.a.Create(ctx, directory.NewUser{Email: "ann@example.com"}, "test")
	signed, _ := f.a.Create(ctx, directory.NewUser{Email: "ben@example.com"}, "test")
	if _, err := f.a.Directory.(*directory.Directory).SignUp(ctx, signed.ID); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{invited.ID: directory.StatusInvited, signed.ID: directory.StatusActive} {
		if _, err := f.a.SetStatus(ctx, id, directory.StatusDisabled, "test"); err != nil {
			t.Fatal(err)
		}
		if u, err := f.a.SetStatus(ctx, id, directory.StatusActive, "test"); err != nil || u.Status != want {
			t.Fatalf("enabled: %+v %v, want %s", u, err, want)
		}
	}
	if _, err := f.a.SetStatus(ctx, invited.ID, directory.StatusInvited, "test"); !errors.As(err, new(*InvalidError)) {
		t.Fatalf("setting invited: %v, want an InvalidError", err)
	}
}

// TestDeleteEndsEverythingBeforeTheRecordGoes: the sessions are ended
// while the user still exists, so that a failure leaves a user to delete
// again rather than sessions nobody can end.
func TestDeleteEndsEverythingBeforeTheRecordGoes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, _ := f.a.Create(ctx, directory.NewUser{Email: "ann@example.com"}, "test")
	f.sessions.fail = errors.New("store down")
	if err := f.a.Delete(ctx, u.ID, "test"); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("a delete whose revocation failed: %v", err)
	}
	if _, err := f.a.Get(ctx, u.ID); err != nil {
		t.Fatalf("the user is gone although the sessions were not ended: %v", err)
	}
	f.sessions.fail = nil
	if err := f.a.Delete(ctx, u.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if len(f.sessions.present) != 1 || !f.sessions.present[0] {
		t.Fatalf("revoked while present: %v", f.sessions.present)
	}
	if _, err := f.a.Get(ctx, u.ID); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if last := f.obs.seen[len(f.obs.seen)-1]; last != flow.UserDeleted {
		t.Fatalf("reported %v", f.obs.seen)
	}
}

func TestNamesAndLocalesAreChecked(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, n := range []directory.NewUser{
		{Email: "a@example.com", Name: "line\nbreak"},
		{Email: "a@example.com", Name: string(make([]byte, MaxName+1))},
		{Email: "a@example.com", Name: "\xff"},
		{Email: "a@example.com", Locale: "fr-FR"},
	} {
		if _, err := f.a.Create(ctx, n, "test"); !errors.As(err, new(*InvalidError)) {
			t.Errorf("%+v: %v, want an InvalidError", n, err)
		}
	}
	u, err := f.a.Create(ctx, directory.NewUser{Email: "a@example.com", Name: "Zoë d'Arc", Locale: "NL-be"}, "test")
	if err != nil || u.Name != "Zoë d'Arc" || u.Locale != "nl-BE" {
		t.Fatalf("%+v %v", u, err)
	}
}

// withdrawals records Withdraw; a user without a live link is
// flow.ErrNoEmailLink, as the flow answers.
type withdrawals struct{ live, withdrawn map[string]bool }

func (w *withdrawals) Withdraw(_ context.Context, id string) error {
	if !w.live[id] {
		return flow.ErrNoEmailLink
	}
	delete(w.live, id)
	w.withdrawn[id] = true
	return nil
}

// TestDisableWithdrawsTheEmailLink: a disabled user's live invitation or
// reset link is withdrawn, so that once enabled again they can be sent a
// new one; a user without one is disabled all the same.
func TestDisableWithdrawsTheEmailLink(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ann, _ := f.a.Create(ctx, directory.NewUser{Email: "ann@example.com"}, "test")
	bob, _ := f.a.Create(ctx, directory.NewUser{Email: "bob@example.com"}, "test")
	links := &withdrawals{live: map[string]bool{ann.ID: true}, withdrawn: map[string]bool{}}
	f.a.EmailLinks = links
	for _, u := range []directory.User{ann, bob} {
		if _, err := f.a.SetStatus(ctx, u.ID, directory.StatusDisabled, "test"); err != nil {
			t.Fatalf("%s: %v", u.Email, err)
		}
	}
	if !links.withdrawn[ann.ID] || len(links.withdrawn) != 1 {
		t.Fatalf("withdrawn %v, want ann's link", links.withdrawn)
	}
}
