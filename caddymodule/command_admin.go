package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// adminFlags are the flags of the subcommands that talk to the running
// instance's admin endpoint, found as `caddy stop` and `caddy reload` find
// it: --address, else the admin address of --config, else localhost:2019.
type adminFlags struct {
	address, config, adapter string
	json                     bool
}

func (f *adminFlags) register(c *cobra.Command) {
	c.PersistentFlags().StringVar(&f.address, "address", "", "the admin endpoint's address (default: from --config, else localhost:2019)")
	c.PersistentFlags().StringVarP(&f.config, "config", "c", "", "a config file whose admin address to use, if --address is not given")
	c.PersistentFlags().StringVarP(&f.adapter, "adapter", "a", "", "the adapter of --config")
	c.PersistentFlags().BoolVar(&f.json, "json", false, "print the admin API's JSON answer instead of a table")
}

// call sends one admin API request and decodes its JSON answer into out;
// it returns the raw answer too.
func (f *adminFlags) call(method, uri string, out any) ([]byte, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(f.address, nil, f.config, f.adapter)
	if err != nil {
		return nil, fmt.Errorf("finding the admin endpoint: %w", err)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("decoding the answer: %w", err)
	}
	return raw, nil
}

// adminCommands are the operator's subcommands: sessions, counters, stats.
func adminCommands() []*cobra.Command {
	var f adminFlags
	var user, status string
	var limit int

	sessions := &cobra.Command{Use: "sessions", Short: "Lists and revokes the sessions of the running instance (admin API)"}
	list := &cobra.Command{Use: "list", Short: "Lists live sessions", Args: cobra.NoArgs, RunE: func(c *cobra.Command, _ []string) error {
		q := url.Values{}
		if user != "" {
			q.Set("user", user)
		}
		if status != "" {
			q.Set("status", status)
		}
		if limit > 0 {
			q.Set("limit", fmt.Sprint(limit))
		}
		uri := "/authsession/sessions"
		if len(q) > 0 {
			uri += "?" + q.Encode()
		}
		var out AdminSessions
		raw, err := f.call(http.MethodGet, uri, &out)
		if err != nil {
			return err
		}
		if f.json {
			_, err = c.OutOrStdout().Write(raw)
			return err
		}
		return printSessions(c.OutOrStdout(), out)
	}}
	list.Flags().StringVar(&user, "user", "", "only this user's sessions (id or login)")
	list.Flags().StringVar(&status, "status", "", `only sessions in this status (e.g. "authenticated")`)
	list.Flags().IntVar(&limit, "limit", 0, "at most this many sessions (default 100)")

	var revokeUser string
	revoke := &cobra.Command{
		Use:   "revoke <hash> | --user U",
		Short: "Revokes one session (by a hash prefix of at least 16 digits) or every session of a user",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var uri string
			switch {
			case len(args) == 1 && revokeUser == "":
				uri = "/authsession/sessions/" + url.PathEscape(args[0])
			case len(args) == 0 && revokeUser != "":
				uri = "/authsession/users/" + url.PathEscape(revokeUser) + "/sessions"
			default:
				return errors.New("give a session hash or --user, not both")
			}
			var out AdminRevoked
			raw, err := f.call(http.MethodDelete, uri, &out)
			if err != nil {
				return err
			}
			if f.json {
				_, err = c.OutOrStdout().Write(raw)
				return err
			}
			for _, h := range out.Revoked {
				fmt.Fprintf(c.OutOrStdout(), "revoked %s\n", h)
			}
			fmt.Fprintf(c.OutOrStdout(), "%d session(s) revoked\n", len(out.Revoked))
			return nil
		},
	}
	revoke.Flags().StringVar(&revokeUser, "user", "", "revoke every session of this user (id or login)")
	sessions.AddCommand(list, revoke)

	var counterUser string
	counters := &cobra.Command{Use: "counters", Short: "Resets a user's attempt counters on the running instance (admin API)"}
	reset := &cobra.Command{Use: "reset", Short: "Forgets a user's wrong answers and lifts their factor blocks", Args: cobra.NoArgs, RunE: func(c *cobra.Command, _ []string) error {
		if counterUser == "" {
			return errors.New("--user is required")
		}
		var out AdminCounters
		raw, err := f.call(http.MethodDelete, "/authsession/users/"+url.PathEscape(counterUser)+"/counters", &out)
		if err != nil {
			return err
		}
		if f.json {
			_, err = c.OutOrStdout().Write(raw)
			return err
		}
		if out.Reset {
			fmt.Fprintf(c.OutOrStdout(), "counters of %s reset\n", out.User)
		} else {
			fmt.Fprintf(c.OutOrStdout(), "%s had no counters to reset\n", out.User)
		}
		return nil
	}}
	reset.Flags().StringVar(&counterUser, "user", "", "the user (id or login; required)")
	counters.AddCommand(reset)

	stats := &cobra.Command{Use: "stats", Short: "Shows the store's state and the live sessions by status (admin API)", Args: cobra.NoArgs, RunE: func(c *cobra.Command, _ []string) error {
		var out AdminStats
		raw, err := f.call(http.MethodGet, "/authsession/stats", &out)
		if err != nil {
			return err
		}
		if f.json {
			_, err = c.OutOrStdout().Write(raw)
			return err
		}
		return printStats(c.OutOrStdout(), out)
	}}

	for _, c := range []*cobra.Command{sessions, counters, stats} {
		f.register(c)
	}
	return []*cobra.Command{sessions, counters, stats}
}

// printSessions writes a listing as a table.
func printSessions(w io.Writer, out AdminSessions) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HASH\tUSER\tLOGIN\tSTATUS\tCREATED\tLAST ACCESS\tEXPIRES\tCLIENT IP\tFACTORS")
	for _, s := range out.Sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Hash, dash(s.User), dash(s.Login), s.Status,
			stamp(s.Created), stamp(s.LastAccess), stamp(s.Expires), dash(s.ClientIP), dash(strings.Join(s.Factors, ",")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if out.Truncated {
		fmt.Fprintln(w, "(more sessions matched: raise --limit)")
	}
	return nil
}

// printStats writes the stats as lines.
func printStats(w io.Writer, out AdminStats) error {
	state := "up"
	if !out.Store.Up {
		state = "down: " + out.Store.Error
	}
	fmt.Fprintf(w, "store: %s (%s)\nlive sessions: %d\n", out.Store.Module, state, out.Sessions.Total)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, st := range sortedKeys(out.Sessions.ByStatus) {
		fmt.Fprintf(tw, "  %s\t%d\n", st, out.Sessions.ByStatus[st])
	}
	return tw.Flush()
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
