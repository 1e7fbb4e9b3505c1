package directory

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Why Create or Update refused a change.
var (
	// ErrEmailTaken is an address another user has.
	ErrEmailTaken = errors.New("directory: the email address belongs to another user")
	// ErrUsernameTaken is a username another user has.
	ErrUsernameTaken = errors.New("directory: the username belongs to another user")
	// ErrInvalidUsername is a username that is not 1 to 40 lower-case
	// letters, digits and '-'.
	ErrInvalidUsername = errors.New("directory: a username is 1 to 40 lower-case letters, digits and '-'")
)

// NewUser is what Create needs: an address, and optionally a name, a
// username and the locale of the mails to the user.
type NewUser struct {
	Email    string
	Name     string
	Username string
	Locale   string
}

// Create adds an invited user: one that an app or the operator added and
// who has not signed up yet (see SignUp). The address is normalized first
// (ErrInvalidEmail); an address or a username another user has is
// ErrEmailTaken or ErrUsernameTaken. Without a username one is derived from
// the address, as for a first login.
//
// As in EnsureByEmail, the index entries are written before the record, so
// that a write that fails midway leaves entries that find nobody, which the
// next Create of the same address takes over.
func (d *Directory) Create(ctx context.Context, n NewUser) (User, error) {
	email, err := NormalizeEmail(n.Email)
	if err != nil {
		return User{}, err
	}
	if n.Username != "" && !validUsername(n.Username) {
		return User{}, ErrInvalidUsername
	}
	lock := d.emailKey(email) + ".lock"
	if err := d.storage.Lock(ctx, lock); err != nil {
		return User{}, fmt.Errorf("directory: locking: %w", err)
	}
	defer d.unlock(ctx, lock)

	u := User{ID: uuid.NewString(), Email: email, Name: n.Name, Locale: n.Locale, Status: StatusInvited, Created: d.now().UTC()}
	raw, err := d.storage.Load(ctx, d.emailKey(email))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return User{}, fmt.Errorf("directory: %w", err)
	default:
		if _, err := d.ByID(ctx, string(raw)); !errors.Is(err, ErrNotFound) {
			if err == nil {
				err = ErrEmailTaken
			}
			return User{}, err
		}
		u.ID = string(raw)
	}
	if n.Username != "" {
		if err := d.claim(ctx, d.usernameKey(n.Username), u.ID); err != nil {
			return User{}, err
		}
		u.Username = n.Username
	} else if u.Username, err = d.claimUsername(ctx, u.ID, email); err != nil {
		return User{}, err
	}
	if err := d.storage.Store(ctx, d.emailKey(email), []byte(u.ID)); err != nil {
		return User{}, fmt.Errorf("directory: indexing user: %w", err)
	}
	if err := d.put(ctx, u); err != nil {
		return User{}, err
	}
	return u, nil
}

// claim takes an index entry for id under its lock: free, or id's already.
// One another user holds is ErrUsernameTaken, unless that user's record is
// gone (a creation that failed midway, or a delete that did).
func (d *Directory) claim(ctx context.Context, key, id string) error {
	if err := d.storage.Lock(ctx, key+".lock"); err != nil {
		return fmt.Errorf("directory: locking username: %w", err)
	}
	defer d.unlock(ctx, key+".lock")
	holder, err := d.storage.Load(ctx, key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("directory: %w", err)
	case string(holder) == id:
		return nil
	default:
		if _, err := d.ByID(ctx, string(holder)); !errors.Is(err, ErrNotFound) {
			if err == nil {
				err = ErrUsernameTaken
			}
			return err
		}
	}
	if err := d.storage.Store(ctx, key, []byte(id)); err != nil {
		return fmt.Errorf("directory: indexing username: %w", err)
	}
	return nil
}

// Update changes the user with id under the user's lock: change edits a
// copy of the record, and what it leaves is stored. The id, address,
// username and creation time are not change's to alter. An error from change
// is returned and nothing is stored.
func (d *Directory) Update(ctx context.Context, id string, change func(*User) error) (User, error) {
	lock := d.userKey(id) + ".lock"
	if err := d.storage.Lock(ctx, lock); err != nil {
		return User{}, fmt.Errorf("directory: locking: %w", err)
	}
	defer d.unlock(ctx, lock)
	u, err := d.ByID(ctx, id)
	if err != nil {
		return User{}, err
	}
	edited := u
	if err := change(&edited); err != nil {
		return User{}, err
	}
	edited.ID, edited.Email, edited.Username, edited.Created = u.ID, u.Email, u.Username, u.Created
	if err := d.put(ctx, edited); err != nil {
		return User{}, err
	}
	return edited, nil
}

// SignUp marks an invited user active: they proved the address (an
// invitation's link, or a sign-in). A user who is active or disabled is
// left as they are.
func (d *Directory) SignUp(ctx context.Context, id string) (User, error) {
	return d.Update(ctx, id, func(u *User) error {
		if u.Status == StatusInvited {
			u.Status = StatusActive
			u.SignedUp = d.now().UTC()
		}
		return nil
	})
}

// Delete removes the user with id: the record first, so that the user is
// gone even if an index entry cannot be removed (an entry whose record is
// gone finds nobody, and the next user of that address or username takes
// it over). The address can then sign up again, as a new user with a new
// id.
func (d *Directory) Delete(ctx context.Context, id string) error {
	u, err := d.ByID(ctx, id)
	if err != nil {
		return err
	}
	if err := d.storage.Delete(ctx, d.userKey(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("directory: deleting user: %w", err)
	}
	for _, key := range []string{d.emailKey(u.Email), d.usernameKey(u.Username)} {
		if holder, err := d.storage.Load(ctx, key); err == nil && string(holder) == id {
			if err := d.storage.Delete(ctx, key); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("directory: deleting an index entry: %w", err)
			}
		}
	}
	return nil
}

// List returns every user, by address. It reads every record: for the
// operator's commands and the users API, not for a request's hot path.
func (d *Directory) List(ctx context.Context) ([]User, error) {
	keys, err := d.storage.List(ctx, path.Join(d.prefix, "users"), false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("directory: listing users: %w", err)
	}
	users := make([]User, 0, len(keys))
	for _, key := range keys {
		id, ok := strings.CutSuffix(path.Base(key), ".json")
		if !ok {
			continue
		}
		u, err := d.ByID(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	slices.SortFunc(users, func(a, b User) int { return strings.Compare(a.Email, b.Email) })
	return users, nil
}
