package caddymodule

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/certmagic"
	"github.com/spf13/cobra"

	"github.com/mailgate/caddy-mailgate/internal/mail"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "mailgate",
		Usage: "test-mail --to <address> | rotate-keys | users list|add|show|disable|enable|delete|invite|reset | sessions revoke --user <id|email> [--config <path>] [--adapter <name>]",
		Short: "Operator tasks for mailgate",
		Long: `
Operator tasks for mailgate.

test-mail sends a test mail to --to with the SMTP settings of every
mailgate handler in the config (the Caddyfile in the current folder unless
--config names another), so that a wrong address, TLS mode or password shows
now, not at the first login.

rotate-keys adds a new signing key to the key ring of every realm in the
config, in the config's storage, and may run while Caddy does: running
instances publish the new key within a minute, sign with it after five, and
accept the old keys until every token they signed has expired. Nobody is
logged out.

users and sessions manage the realm's users and end their sessions, in the
config's storage and store (docs/users.md).
`,
		CobraFunc: func(cmd *cobra.Command) {
			test := &cobra.Command{
				Use:   "test-mail --to <address> [--config <path>] [--adapter <name>]",
				Short: "Sends a test mail with the configured SMTP settings",
				Args:  cobra.NoArgs,
				RunE:  caddycmd.WrapCommandFuncForCobra(cmdTestMail),
			}
			test.Flags().String("to", "", "Address to send the test mail to (required)")
			test.Flags().StringP("config", "c", "", "Configuration file")
			test.Flags().StringP("adapter", "a", "", "Name of the config adapter")
			cmd.AddCommand(test)
			rotate := &cobra.Command{
				Use:   "rotate-keys [--config <path>] [--adapter <name>]",
				Short: "Rotates the signing keys of every mailgate realm in the config",
				Args:  cobra.NoArgs,
				RunE:  caddycmd.WrapCommandFuncForCobra(cmdRotateKeys),
			}
			rotate.Flags().StringP("config", "c", "", "Configuration file")
			rotate.Flags().StringP("adapter", "a", "", "Name of the config adapter")
			cmd.AddCommand(rotate)
			cmd.AddCommand(usersCommand(), sessionsCommand())
		},
	})
}

// cmdTestMail sends one test mail through each mailgate handler's SMTP
// settings, and says which went where.
func cmdTestMail(fl caddycmd.Flags) (int, error) {
	to := fl.String("to")
	if to == "" {
		return caddy.ExitCodeFailedStartup, errors.New("--to is required: the address to send the test mail to")
	}
	_, handlers, err := loadMailgates(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	for _, m := range handlers {
		// Caddy would not start with a base_url that does not parse, and
		// its host is the mail's local_name by default.
		base, err := parseBaseURL(m.BaseURL)
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		site := m.SiteName
		if site == "" {
			site = base.Hostname()
		}
		if m.SMTP == nil {
			fmt.Printf("%s: mails go to the outbox %s, not through SMTP; nothing to test\n", site, m.Outbox)
			continue
		}
		mailer, err := m.SMTP.mailer(base)
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("%s: %w", site, err)
		}
		letter := mail.Letter{To: to, Template: "test", SiteName: site}
		err = mailer.Send(context.Background(), letter)
		// Says goodbye (QUIT) on the connection the pool kept open.
		if s, ok := mailer.Transport.(*mail.SMTP); ok {
			_ = s.Close()
		}
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("%s: %w", site, err)
		}
		fmt.Printf("%s: test mail to %s handed to %s\n", site, to, m.SMTP.Address)
	}
	return caddy.ExitCodeSuccess, nil
}

// loadMailgates loads the config that --config and --adapter name (the
// Caddyfile in the current folder by default) and returns it as JSON with
// its mailgate handlers, of which there must be one at least.
func loadMailgates(fl caddycmd.Flags) ([]byte, []*Mailgate, error) {
	cfg, _, _, err := caddycmd.LoadConfig(fl.String("config"), fl.String("adapter"))
	if err != nil {
		return nil, nil, err
	}
	handlers, err := findMailgates(cfg)
	if err != nil {
		return nil, nil, err
	}
	if len(handlers) == 0 {
		return nil, nil, errors.New("the config has no mailgate handler")
	}
	return cfg, handlers, nil
}

// findMailgates returns every mailgate handler in a JSON config, wherever
// its routes nest it.
func findMailgates(cfg []byte) ([]*Mailgate, error) {
	var tree any
	if err := json.Unmarshal(cfg, &tree); err != nil {
		return nil, err
	}
	var found []*Mailgate
	var walk func(v any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "mailgate" {
				raw, _ := json.Marshal(v)
				m := new(Mailgate)
				if err := json.Unmarshal(raw, m); err != nil {
					return fmt.Errorf("reading a mailgate handler: %w", err)
				}
				found = append(found, m)
				return nil
			}
			for _, child := range v {
				if err := walk(child); err != nil {
					return err
				}
			}
		case []any:
			for _, child := range v {
				if err := walk(child); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return found, walk(tree)
}

// cmdRotateKeys rotates the key ring of each realm the config's mailgate
// handlers name, in the storage the config names.
func cmdRotateKeys(fl caddycmd.Flags) (int, error) {
	cfgJSON, handlers, err := loadMailgates(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	st, err := configStorage(ctx, cfgJSON)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	done := map[string]bool{}
	for _, m := range handlers {
		realm := cmp.Or(m.Realm, defaultRealm)
		if done[realm] {
			continue
		}
		done[realm] = true
		ring, err := session.LoadKeyRing(ctx, st, "mailgate/"+realm+"/keys.json", time.Now)
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("realm %s: %w", realm, err)
		}
		kid, err := ring.Rotate(ctx, keyActivation, keyRetention)
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("realm %s: %w", realm, err)
		}
		fmt.Printf("realm %s: new signing key %s stored; it signs from %s, and the keys before it verify until %s\n",
			realm, kid, time.Now().Add(keyActivation).Format(time.RFC3339), time.Now().Add(keyActivation+keyRetention).Format(time.RFC3339))
	}
	return caddy.ExitCodeSuccess, nil
}

// configStorage is the storage a config names (Caddy's default storage when
// it names none), built as Caddy builds it when it loads the config.
func configStorage(ctx caddy.Context, cfgJSON []byte) (certmagic.Storage, error) {
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return nil, err
	}
	if cfg.StorageRaw == nil {
		return caddy.DefaultStorage, nil
	}
	val, err := ctx.LoadModule(&cfg, "StorageRaw")
	if err != nil {
		return nil, fmt.Errorf("loading the storage module: %w", err)
	}
	st, err := val.(caddy.StorageConverter).CertMagicStorage()
	if err != nil {
		return nil, fmt.Errorf("creating the storage: %w", err)
	}
	return st, nil
}
