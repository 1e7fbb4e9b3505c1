package caddymodule

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/mailgate/caddy-mailgate/internal/admin"
	"github.com/mailgate/caddy-mailgate/internal/api"
	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/locale"
	"github.com/mailgate/caddy-mailgate/internal/session"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// statusDeleted is what the output says of a user just deleted; no
// stored user has it.
const statusDeleted = "deleted"

// cliBy names the command line in the audit line of a change.
const cliBy = "command line"

// usersCommand is `caddy mailgate users …`: the operator's view of the
// realm's users, in the config's storage, so that it works beside a
// running server and across a cluster.
func usersCommand() *cobra.Command {
	users := &cobra.Command{
		Use:   "users list|add|show|disable|enable|delete|invite|reset|expire-password",
		Short: "Lists, adds, shows, disables, enables and deletes users; mails invitations and resets",
		Long: `
Manages the users of a mailgate realm in the storage the config names, so
it works while Caddy runs, and for every instance of a cluster.

disable and delete end every session, user JWT, link and code of the user
on every instance. They need the realm's shared store (store redis): with
the memory store the sessions live inside the running Caddy, which a
command cannot reach; use the users API there (docs/users.md).
`,
	}
	add := userCommand("add <email> [--name <name>] [--username <username>] [--locale <locale>]", "Adds an invited user", cobra.ExactArgs(1), cmdUsersAdd)
	add.Flags().String("name", "", "Display name (sent to apps as Remote-Name)")
	add.Flags().String("username", "", "Username; derived from the address when empty")
	add.Flags().String("locale", "", "Locale of the mails to the user: "+strings.Join(locale.All(), ", "))
	users.AddCommand(
		userCommand("list", "Lists the users", cobra.NoArgs, cmdUsersList),
		add,
		userCommand("show <id|email>", "Shows a user", cobra.ExactArgs(1), cmdUsersShow),
		userCommand("disable <id|email>", "Disables a user and ends their sessions, links and codes", cobra.ExactArgs(1), cmdUsersDisable),
		userCommand("enable <id|email>", "Enables a disabled user", cobra.ExactArgs(1), cmdUsersEnable),
		userCommand("delete <id|email>", "Deletes a user and ends their sessions, links and codes", cobra.ExactArgs(1), cmdUsersDelete),
		userCommand("expire-password <id|email>", "Makes a user replace their password at the next password sign-in", cobra.ExactArgs(1), cmdUsersExpirePassword),
	)
	addLinkCommands(users)
	return users
}

// sessionsCommand is `caddy mailgate sessions revoke --user …`.
func sessionsCommand() *cobra.Command {
	sessions := &cobra.Command{Use: "sessions revoke --user <id|email>", Short: "Ends sessions"}
	revoke := userCommand("revoke --user <id|email>", "Ends every session and user JWT of a user, who may sign in again", cobra.NoArgs, cmdSessionsRevoke)
	revoke.Flags().String("user", "", "The user's id or email address (required)")
	sessions.AddCommand(revoke)
	return sessions
}

// userCommand is a subcommand with the flags every users command has.
func userCommand(use, short string, args cobra.PositionalArgs, run caddycmd.CommandFunc) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: args, RunE: caddycmd.WrapCommandFuncForCobra(run)}
	c.Flags().StringP("config", "c", "", "Configuration file")
	c.Flags().StringP("adapter", "a", "", "Name of the config adapter")
	c.Flags().String("realm", "", "The realm, when the config has several")
	c.Flags().Bool("json", false, "Print JSON instead of a table")
	return c
}

// errMemoryStore is a command that must end sessions, run against a realm
// whose store is the memory of the running Caddy.
type errMemoryStore struct{ realm string }

func (e errMemoryStore) Error() string {
	return fmt.Sprintf("realm %s keeps its sessions in the memory store of the running Caddy, which this command cannot reach, "+
		"so it could not end the user's sessions; nothing was changed. Use the users API of the running server "+
		"(PATCH or DELETE {prefix}/api/v1/users/{id}, docs/users.md), or configure `store redis` so that commands and every instance share revocations", e.realm)
}

// cliRealm is one realm of the config, opened for a command.
type cliRealm struct {
	name  string
	ctx   caddy.Context
	users *directory.Directory
	// handlers are the config's mailgate handlers of this realm, with
	// their defaults applied.
	handlers []*Mailgate
	store    ticket.Store
	close    func()
}

// openRealm opens the realm --realm names (the config's only one by
// default) in the config's storage. The store is opened only with
// withStore, and must then be shared: see errMemoryStore.
func openRealm(fl caddycmd.Flags, withStore bool) (*cliRealm, error) {
	cfgJSON, handlers, err := loadMailgates(fl)
	if err != nil {
		return nil, err
	}
	byRealm := map[string][]*Mailgate{}
	for _, m := range handlers {
		if err := m.applyDefaults(); err != nil {
			return nil, err
		}
		byRealm[m.Realm] = append(byRealm[m.Realm], m)
	}
	name := fl.String("realm")
	if name == "" {
		if len(byRealm) > 1 {
			names := make([]string, 0, len(byRealm))
			for n := range byRealm {
				names = append(names, n)
			}
			slices.Sort(names)
			return nil, fmt.Errorf("the config has several realms (%s): name one with --realm", strings.Join(names, ", "))
		}
		for n := range byRealm {
			name = n
		}
	}
	if byRealm[name] == nil {
		return nil, fmt.Errorf("the config has no mailgate handler of realm %q", name)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	st, err := configStorage(ctx, cfgJSON)
	if err != nil {
		cancel()
		return nil, err
	}
	r := &cliRealm{name: name, ctx: ctx, handlers: byRealm[name], users: directory.New(st, "mailgate/"+name, now), close: cancel}
	if withStore {
		settings := *r.handlers[0].Store
		if settings.Type == "memory" {
			cancel()
			return nil, errMemoryStore{realm: name}
		}
		store, err := settings.newStore(name, caddy.Log().Named("mailgate.store"))
		if err != nil {
			cancel()
			return nil, fmt.Errorf("realm %s: opening the store: %w", name, err)
		}
		r.store = store
		r.close = func() { _ = store.Close(); cancel() }
	}
	return r, nil
}

// admin is the users' management on this realm. Its revocations last as
// long as the longest-lived session or user JWT of any site in the realm.
func (r *cliRealm) admin() *admin.Users {
	// The audit trail on the logger a running Caddy writes it to, so
	// that one log filter keeps the command line's changes too.
	trail := audit{logger: caddy.Log().Named("http.handlers.mailgate.audit"), realm: r.name}
	a := &admin.Users{Directory: r.users, Now: now, Observer: observers{events{logger: caddy.Log().Named("mailgate")}, trail}}
	if r.store != nil {
		var ttl, tokenTTL time.Duration
		for _, m := range r.handlers {
			// A persistent session lasts 30 days unless the config says
			// otherwise: cut-offs must outlast it.
			ttl = max(ttl, time.Duration(m.SessionTTL), time.Duration(cmp.Or(m.PersistentSessionTTL, caddy.Duration(maxSessionTTL))))
			tokenTTL = max(tokenTTL, m.longestProjectTokenTTL())
		}
		a.Sessions = session.NewManager(session.Config{
			Signer: session.Signer{Now: now}, TTL: ttl, Revocations: r.store, UserTokenTTL: tokenTTL,
		})
		a.Pending = r.store
		a.EmailLinks = &flow.EmailLinks{Store: r.store, Users: r.users}
	}
	return a
}

// runOnRealm opens the realm, runs do with its users' management, and
// prints what do returns: a user, or a list of them.
func runOnRealm(fl caddycmd.Flags, withStore bool, do func(ctx context.Context, a *admin.Users) (any, error)) (int, error) {
	r, err := openRealm(fl, withStore)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	defer r.close()
	out, err := do(r.ctx, r.admin())
	if err != nil {
		return caddy.ExitCodeFailedQuit, cliError(err)
	}
	if err := printUsers(os.Stdout, out, fl.Bool("json")); err != nil {
		return caddy.ExitCodeFailedQuit, err
	}
	return caddy.ExitCodeSuccess, nil
}

// cliError says in the operator's words what the directory refused.
func cliError(err error) error {
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return errors.New("no user has this id or address")
	case errors.Is(err, directory.ErrEmailTaken):
		return errors.New("another user has this email address")
	case errors.Is(err, directory.ErrUsernameTaken):
		return errors.New("another user has this username")
	case errors.Is(err, admin.ErrNoPassword):
		return errors.New("this user has no password to expire")
	}
	return err
}

func cmdUsersList(fl caddycmd.Flags) (int, error) {
	return runOnRealm(fl, false, func(ctx context.Context, a *admin.Users) (any, error) {
		return a.List(ctx)
	})
}

func cmdUsersAdd(fl caddycmd.Flags) (int, error) {
	return runOnRealm(fl, false, func(ctx context.Context, a *admin.Users) (any, error) {
		return a.Create(ctx, directory.NewUser{
			Email: fl.Arg(0), Name: fl.String("name"), Username: fl.String("username"), Locale: fl.String("locale"),
		}, cliBy)
	})
}

func cmdUsersShow(fl caddycmd.Flags) (int, error) {
	return runOnRealm(fl, false, func(ctx context.Context, a *admin.Users) (any, error) {
		return a.Lookup(ctx, fl.Arg(0))
	})
}

func cmdUsersDisable(fl caddycmd.Flags) (int, error) {
	return setStatus(fl, directory.StatusDisabled)
}

func cmdUsersEnable(fl caddycmd.Flags) (int, error) {
	return setStatus(fl, directory.StatusActive)
}

// setStatus disables or enables the user the first argument names. Only
// disabling needs the store, to end the user's sessions.
func setStatus(fl caddycmd.Flags, status string) (int, error) {
	return runOnRealm(fl, status == directory.StatusDisabled, func(ctx context.Context, a *admin.Users) (any, error) {
		u, err := a.Lookup(ctx, fl.Arg(0))
		if err != nil {
			return nil, err
		}
		return a.SetStatus(ctx, u.ID, status, cliBy)
	})
}

func cmdUsersDelete(fl caddycmd.Flags) (int, error) {
	return runOnRealm(fl, true, func(ctx context.Context, a *admin.Users) (any, error) {
		u, err := a.Lookup(ctx, fl.Arg(0))
		if err != nil {
			return nil, err
		}
		if err := a.Delete(ctx, u.ID, cliBy); err != nil {
			return nil, err
		}
		u.Status = statusDeleted
		return u, nil
	})
}

func cmdUsersExpirePassword(fl caddycmd.Flags) (int, error) {
	return runOnRealm(fl, false, func(ctx context.Context, a *admin.Users) (any, error) {
		u, err := a.Lookup(ctx, fl.Arg(0))
		if err != nil {
			return nil, err
		}
		return a.ExpirePassword(ctx, u.ID)
	})
}

func cmdSessionsRevoke(fl caddycmd.Flags) (int, error) {
	ref := fl.String("user")
	if ref == "" {
		return caddy.ExitCodeFailedStartup, errors.New("--user is required: the user's id or email address")
	}
	return runOnRealm(fl, true, func(ctx context.Context, a *admin.Users) (any, error) {
		u, err := a.Lookup(ctx, ref)
		if err != nil {
			return nil, err
		}
		return a.RevokeSessions(ctx, u.ID)
	})
}

// printUsers writes a user or a list of users as a table, or as the users
// API's JSON.
func printUsers(w io.Writer, v any, asJSON bool) error {
	var users []directory.User
	switch v := v.(type) {
	case directory.User:
		users = []directory.User{v}
	case []directory.User:
		users = v
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		views := make([]api.UserView, len(users))
		for i, u := range users {
			views[i] = api.ViewOf(u)
		}
		if _, list := v.([]directory.User); list {
			return enc.Encode(views)
		}
		return enc.Encode(views[0])
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tUSERNAME\tNAME\tSTATUS\tLOCALE\tCREATED\tSIGNED UP")
	for _, u := range users {
		signedUp := "-"
		if !u.SignedUp.IsZero() {
			signedUp = u.SignedUp.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Username, cmp.Or(u.Name, "-"), u.Status,
			cmp.Or(u.Locale, "-"), u.Created.Format(time.RFC3339), signedUp)
	}
	return tw.Flush()
}
