package caddymodule

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/authsession/caddy-authsession/state"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "authsession",
		Usage: "user <add|passwd|totp> ... | sessions <list|revoke> ... | counters reset ... | stats",
		Short: "Maintains the authsession users file; lists and revokes sessions",
		Long: `Maintains the users file named by the authsession app's users_file option.

  caddy authsession user add --file users.json --login alice [--id ID] [--group G]
      [--mail a@example.com] [--phone +15555550100] [--factor ChallengeEmail]...
  caddy authsession user passwd --file users.json --login alice
  caddy authsession user totp --file users.json --login alice [--secret BASE32]
      [--qr alice.png] [--remove]
  caddy authsession user totp --config Caddyfile --login alice ...   (directory users)

Passwords are read from the terminal (twice) or, when stdin is not a
terminal, from its first line; they are stored as bcrypt hashes. "totp"
enrols a fresh secret (or the given one), enables ChallengeOMATOTP and prints
the secret and its otpauth:// URI, optionally writing a QR code PNG. The file
is written atomically with mode 0600; run "caddy reload" to apply it.
With --config, the user is looked up in the config's directories and the
secret is kept in its file or Redis store (a file store only while Caddy
is stopped; the memory store cannot be reached), in effect at once.

  caddy authsession sessions list [--user U] [--status S] [--limit N] [--json]
  caddy authsession sessions revoke <hash> | --user U [--json]
  caddy authsession counters reset --user U [--json]
  caddy authsession stats [--json]

These talk to the running instance's admin endpoint (the admin API's
/authsession/ routes), found as "caddy reload" finds it: --address, else the
admin address of --config, else localhost:2019. A session is named by its
hash, a prefix of the hex SHA-256 of its id (at least 16 digits to revoke);
with the Redis store a revocation holds on every instance.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(userCommand())
			cmd.AddCommand(adminCommands()...)
		},
	})
}

// userFlags are the flags of the user subcommands.
type userFlags struct {
	file, id, login, group, mail, phone, secret, qr, issuer string
	config, adapter                                         string
	factors                                                 []string
	remove                                                  bool
}

func userCommand() *cobra.Command {
	var f userFlags
	user := &cobra.Command{Use: "user", Short: "Adds users, sets passwords and enrols TOTP in the users file"}
	user.PersistentFlags().StringVar(&f.file, "file", "", "the users file (required)")
	user.PersistentFlags().StringVar(&f.login, "login", "", "the user's login (required)")

	add := &cobra.Command{Use: "add", Short: "Adds a user", RunE: func(c *cobra.Command, _ []string) error {
		return runUser("add", f, c.InOrStdin(), c.OutOrStdout())
	}}
	add.Flags().StringVar(&f.id, "id", "", "the user's id (default: the login)")
	add.Flags().StringVar(&f.group, "group", "", "the user's group")
	add.Flags().StringVar(&f.mail, "mail", "", "the user's mail address")
	add.Flags().StringVar(&f.phone, "phone", "", "the user's phone number")
	add.Flags().StringArrayVar(&f.factors, "factor", nil, "an enabled factor (repeatable): "+strings.Join(state.Factors, ", "))

	passwd := &cobra.Command{Use: "passwd", Short: "Sets a user's password", RunE: func(c *cobra.Command, _ []string) error {
		return runUser("passwd", f, c.InOrStdin(), c.OutOrStdout())
	}}

	totp := &cobra.Command{Use: "totp", Short: "Enrols (or removes) a user's TOTP authenticator", RunE: func(c *cobra.Command, _ []string) error {
		return runUser("totp", f, c.InOrStdin(), c.OutOrStdout())
	}}
	totp.Flags().StringVar(&f.secret, "secret", "", "use this base32 secret instead of a fresh one")
	totp.Flags().StringVar(&f.qr, "qr", "", "write a QR code PNG of the otpauth:// URI to this file")
	totp.Flags().StringVar(&f.issuer, "issuer", "authsession", "the issuer shown by authenticator apps")
	totp.Flags().BoolVar(&f.remove, "remove", false, "remove the user's TOTP secret and factor")
	totp.Flags().StringVar(&f.config, "config", "", "for a directory (LDAP) user: the Caddy config whose store keeps the secret")
	totp.Flags().StringVar(&f.adapter, "adapter", "", "the adapter of --config (default: caddyfile for files named Caddyfile*)")

	user.AddCommand(add, passwd, totp)
	return user
}

// runUser performs one user subcommand on the users file.
func runUser(op string, f userFlags, in io.Reader, out io.Writer) error {
	if op == "totp" && f.config != "" && f.login != "" {
		return runStoredTOTP(f, out)
	}
	if f.file == "" || f.login == "" {
		return errors.New("--file and --login are required")
	}
	users, err := state.LoadUsers(f.file, op == "add")
	if err != nil {
		return err
	}
	switch op {
	case "add":
		pw, err := readPassword(in, out)
		if err != nil {
			return err
		}
		id := f.id
		if id == "" {
			id = f.login
		}
		u := state.User{ID: id, Login: f.login, Group: f.group, Mail: f.mail, Phone: f.phone, Factors: f.factors}
		if err := users.Add(u, pw); err != nil {
			return err
		}
	case "passwd":
		if _, ok := users.Lookup(f.login); !ok {
			return fmt.Errorf("%w: %q", state.ErrUserNotFound, f.login)
		}
		pw, err := readPassword(in, out)
		if err != nil {
			return err
		}
		if pw == "" {
			return errors.New("the password is empty")
		}
		if err := users.SetPassword(f.login, pw); err != nil {
			return err
		}
	case "totp":
		if f.remove {
			if err := users.SetTOTP(f.login, ""); err != nil {
				return err
			}
			break
		}
		u, ok := users.Lookup(f.login)
		if !ok {
			return fmt.Errorf("%w: %q", state.ErrUserNotFound, f.login)
		}
		e, err := state.TOTPPolicy{Issuer: f.issuer}.Defaults().Enroll(u.Login, f.secret)
		if err != nil {
			return err
		}
		if err := users.SetTOTP(f.login, e.Secret); err != nil {
			return err
		}
		if f.qr != "" {
			if err := os.WriteFile(f.qr, e.PNG, 0o600); err != nil {
				return fmt.Errorf("writing qr code: %w", err)
			}
		}
		fmt.Fprintf(out, "secret: %s\nuri: %s\n", e.Secret, e.URI)
	default:
		return fmt.Errorf("unknown user command %q", op)
	}
	if err := users.Save(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %s updated\n", f.file, f.login)
	return nil
}

// readPassword reads a password from the terminal (asked twice) or from the
// first line of a non-terminal stdin.
func readPassword(in io.Reader, out io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(out, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(out)
		if err != nil {
			return "", fmt.Errorf("reading password: %w", err)
		}
		fmt.Fprint(out, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(out)
		if err != nil {
			return "", fmt.Errorf("reading password: %w", err)
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords do not match")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
