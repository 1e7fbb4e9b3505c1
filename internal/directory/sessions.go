package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"time"
)

// MaxSessionRecords bounds a user's list of sessions: the newest are kept.
// A person with more live sessions than this still has them all; the
// profile page shows the newest, and "sign out everywhere" ends them all.
const MaxSessionRecords = 20

// SessionRecord is what the profile page lists of a session that was
// issued: never its token, only what lets a person recognise it.
type SessionRecord struct {
	// ID is the session's id (its sid), which names it in the session's
	// revocation.
	ID      string    `json:"id"`
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"`
	// Method is how the person signed in (flow.Method).
	Method string `json:"method,omitempty"`
	// Agent is a coarse label of the browser, such as "Firefox · Linux":
	// enough to recognise a device, too little to fingerprint it.
	Agent string `json:"agent,omitempty"`
}

// Sessions are kept in Caddy's storage, beside the users, rather than in
// the ticket store: they outlive the store's short-lived tickets, and every
// instance of a cluster sees the same list.

// RecordSession adds s to the user's list, dropping the sessions that have
// expired and, past MaxSessionRecords, the oldest. A storage lock per user
// keeps two instances signing the same person in from losing one entry.
func (d *Directory) RecordSession(ctx context.Context, userID string, s SessionRecord) error {
	return d.editSessions(ctx, userID, func(list []SessionRecord) []SessionRecord {
		list = append(list, s)
		slices.SortStableFunc(list, func(a, b SessionRecord) int { return b.Issued.Compare(a.Issued) })
		return list[:min(len(list), MaxSessionRecords)]
	})
}

// Sessions returns the user's recorded sessions that have not expired,
// newest first. It only reads: expired ones are dropped from storage by
// the next write.
func (d *Directory) Sessions(ctx context.Context, userID string) ([]SessionRecord, error) {
	list, err := d.loadSessions(ctx, userID)
	if err != nil {
		return nil, err
	}
	return d.live(list), nil
}

// ForgetSession drops one session from the user's list (a sign-out).
func (d *Directory) ForgetSession(ctx context.Context, userID, sessionID string) error {
	return d.editSessions(ctx, userID, func(list []SessionRecord) []SessionRecord {
		return slices.DeleteFunc(list, func(s SessionRecord) bool { return s.ID == sessionID })
	})
}

// ForgetSessions drops the user's whole list: every session was ended.
func (d *Directory) ForgetSessions(ctx context.Context, userID string) error {
	err := d.storage.Delete(ctx, d.sessionsKey(userID))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("directory: deleting sessions: %w", err)
	}
	return nil
}

// editSessions stores what edit makes of the user's live sessions.
func (d *Directory) editSessions(ctx context.Context, userID string, edit func([]SessionRecord) []SessionRecord) error {
	key := d.sessionsKey(userID)
	if err := d.storage.Lock(ctx, key+".lock"); err != nil {
		return fmt.Errorf("directory: locking: %w", err)
	}
	defer d.unlock(ctx, key+".lock")
	list, err := d.loadSessions(ctx, userID)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(edit(d.live(list)))
	if err != nil {
		return err
	}
	if err := d.storage.Store(ctx, key, raw); err != nil {
		return fmt.Errorf("directory: storing sessions: %w", err)
	}
	return nil
}

func (d *Directory) loadSessions(ctx context.Context, userID string) ([]SessionRecord, error) {
	raw, err := d.storage.Load(ctx, d.sessionsKey(userID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	var list []SessionRecord
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("directory: sessions of %s: %w", userID, err)
	}
	return list, nil
}

// live drops the sessions that have expired.
func (d *Directory) live(list []SessionRecord) []SessionRecord {
	now := d.now()
	return slices.DeleteFunc(list, func(s SessionRecord) bool { return !s.Expires.After(now) })
}

func (d *Directory) sessionsKey(userID string) string {
	return path.Join(d.prefix, "sessions", userID+".json")
}
