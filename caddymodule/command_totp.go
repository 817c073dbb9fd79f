package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/authsession/caddy-authsession/state"
)

// runStoredTOTP enrols (or removes) the TOTP secret of a user of an
// identity store that cannot hold one (an LDAP directory): it loads the
// authsession app of the Caddy config at f.config, opens its store and
// directories as Caddy would, finds the user and keeps the secret in the
// store's per-user state. The memory store lives inside the running Caddy
// and cannot be reached this way; a file store is locked while Caddy runs
// (stop it, or use Redis).
func runStoredTOTP(f userFlags, out io.Writer) error {
	if f.file != "" {
		return errors.New("--file and --config exclude each other: --file for users-file users, --config for directory users")
	}
	body, _, _, err := caddycmd.LoadConfig(f.config, f.adapter)
	if err != nil {
		return err
	}
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		return fmt.Errorf("reading %s: %w", f.config, err)
	}
	raw, ok := cfg.Apps["authsession"]
	if !ok || string(raw) == "null" {
		return fmt.Errorf("%s has no authsession app", f.config)
	}
	var a App
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("%s: the authsession app: %w", f.config, err)
	}
	var mod struct {
		Module string `json:"module"`
	}
	if a.StoreRaw != nil {
		if err := json.Unmarshal(a.StoreRaw, &mod); err != nil {
			return fmt.Errorf("%s: the authsession store: %w", f.config, err)
		}
	}
	if a.StoreRaw == nil || mod.Module == "memory" {
		return errors.New("the memory store lives inside the running Caddy: a directory user's TOTP secret can be kept only in a file or Redis store")
	}
	if len(a.Directories) == 0 {
		return fmt.Errorf("%s configures no directory: use --file for users of the users file", f.config)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	a.offline = true
	if err := a.Provision(ctx); err != nil {
		return err
	}
	defer func() { _ = a.Cleanup() }()
	u, ok, err := a.otp.dirs.Lookup(ctx, f.login)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %q is in no identity store of %s", state.ErrUserNotFound, f.login, f.config)
	}
	if a.otp.users != nil && u.Store == a.IDStoreName {
		return fmt.Errorf("%q is a user of the users file %s: use --file", f.login, a.otp.users.Path())
	}
	if f.remove {
		if err := state.SetStoredTOTP(ctx, a.store, u.ID, ""); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: the TOTP secret of %s (%s) removed\n", u.Store, u.Login, u.ID)
		return nil
	}
	e, err := state.TOTPPolicy{Issuer: f.issuer}.Defaults().Enroll(u.Login, f.secret)
	if err != nil {
		return err
	}
	if err := state.SetStoredTOTP(ctx, a.store, u.ID, e.Secret); err != nil {
		return err
	}
	if f.qr != "" {
		if err := os.WriteFile(f.qr, e.PNG, 0o600); err != nil {
			return fmt.Errorf("writing qr code: %w", err)
		}
	}
	fmt.Fprintf(out, "secret: %s\nuri: %s\n%s: the TOTP secret of %s (%s) kept in the session store\n", e.Secret, e.URI, u.Store, u.Login, u.ID)
	return nil
}
