package caddymodule

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/ldapdir"
)

// DirectoryConfig is one identity store besides the users file (see
// docs/directories.md). Lookups go through the users file first (named
// id_store_name), then the directories in the order configured; the first
// that knows a login answers for it.
type DirectoryConfig struct {
	// Name is the store's name: the idStoreName of its users' sessions
	// and what OAM's idStore selects. Required, unique.
	Name string `json:"name"`
	// Kind is the store's kind; "ldap" is the one there is.
	Kind string `json:"kind"`
	// URLs are ldap:// (upgraded with StartTLS) or ldaps:// URLs, tried
	// in order (fail-over). Required.
	URLs []string `json:"urls"`
	// BindDN and BindPassword are the service account that searches
	// users ({env.*} accepted, advised for the password).
	BindDN       string `json:"bind_dn,omitempty"`
	BindPassword string `json:"bind_password,omitempty"`
	// BaseDN is where users are searched (whole subtree). Required.
	BaseDN string `json:"base_dn"`
	// UserFilter finds a user by what they typed, {login} standing for
	// it (escaped). Default: (uid={login}).
	UserFilter string `json:"user_filter,omitempty"`
	// Attributes map a user's fields (id, login, mail, phone, group, name) to
	// directory attributes. Default: id uid, login as id, mail mail,
	// phone mobile, no group attribute.
	Attributes map[string]string `json:"attributes,omitempty"`
	// GroupFilter finds the user's groups ({dn}, {id}, {login}) below
	// GroupBaseDN (default BaseDN); their GroupAttribute (default cn) is
	// the session's groupName (the first in order when several).
	GroupFilter    string `json:"group_filter,omitempty"`
	GroupBaseDN    string `json:"group_base_dn,omitempty"`
	GroupAttribute string `json:"group_attribute,omitempty"`
	// TLS configures the connection's TLS. Default: the system's roots,
	// the URL's host as server name.
	TLS *DirectoryTLS `json:"tls,omitempty"`
	// Timeout bounds every directory call, fail-over included. Default 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Cache is how long users' attributes are kept (never passwords).
	// Default 0: every sign-in asks the directory.
	Cache caddy.Duration `json:"cache,omitempty"`
	// Factors the directory's users have when it holds their address
	// (ChallengeEmail with a mail, ChallengeSMS with a phone). Default
	// both.
	Factors []string `json:"factors,omitempty"`
}

// DirectoryTLS is a directory connection's TLS settings.
type DirectoryTLS struct {
	// CAFile is a PEM file of the CAs to trust instead of the system's.
	CAFile string `json:"ca_file,omitempty"`
	// ServerName is the name to verify. Default: the URL's host.
	ServerName string `json:"server_name,omitempty"`
}

// directoryAttributes are the keys of DirectoryConfig.Attributes.
var directoryAttributes = []string{"id", "login", "mail", "phone", "group", "name"}

// provisionDirectories opens the configured directories (they connect on
// first use) and returns them in lookup order.
func (a *App) provisionDirectories(repl *caddy.Replacer) ([]*ldapdir.Directory, error) {
	names := map[string]bool{}
	if a.UsersFile != "" {
		names[a.IDStoreName] = true
	}
	var out []*ldapdir.Directory
	fail := func(err error) ([]*ldapdir.Directory, error) {
		for _, d := range out {
			_ = d.Close()
		}
		return nil, err
	}
	for i, dc := range a.Directories {
		d, err := dc.open(repl)
		if err != nil {
			return fail(fmt.Errorf("directory %d (%q): %w", i, dc.Name, err))
		}
		if names[dc.Name] {
			_ = d.Close()
			return fail(fmt.Errorf("directory %q: the name is taken (by another directory or, as id_store_name, by the users file)", dc.Name))
		}
		names[dc.Name] = true
		out = append(out, d)
		a.logger.Info("ldap directory configured", zap.String("name", dc.Name), zap.Strings("urls", dc.URLs))
	}
	return out, nil
}

// open builds the directory dc describes.
func (dc *DirectoryConfig) open(repl *caddy.Replacer) (*ldapdir.Directory, error) {
	if dc.Kind != "ldap" {
		return nil, fmt.Errorf("unknown kind %q (known: ldap)", dc.Kind)
	}
	if dc.Name == "" || state.ValidateUserName(dc.Name) != nil || strings.TrimSpace(dc.Name) != dc.Name {
		return nil, errors.New("a name (text without spaces around it) is required")
	}
	cfg := ldapdir.Config{
		Name: dc.Name, BindDN: dc.BindDN, BindPassword: repl.ReplaceAll(dc.BindPassword, ""),
		BaseDN: dc.BaseDN, UserFilter: dc.UserFilter,
		GroupFilter: dc.GroupFilter, GroupBaseDN: dc.GroupBaseDN, GroupAttribute: dc.GroupAttribute,
		Timeout: time.Duration(dc.Timeout), Cache: time.Duration(dc.Cache), Factors: dc.Factors,
	}
	for _, u := range dc.URLs {
		cfg.URLs = append(cfg.URLs, repl.ReplaceAll(u, ""))
	}
	if dc.BindPassword != "" && cfg.BindPassword == "" {
		return nil, errors.New("bind_password is empty once placeholders are replaced (is its environment variable set?)")
	}
	for k, v := range dc.Attributes {
		if v == "" {
			return nil, fmt.Errorf("attribute %q: empty name", k)
		}
		switch k {
		case "id":
			cfg.Attributes.ID = v
		case "login":
			cfg.Attributes.Login = v
		case "mail":
			cfg.Attributes.Mail = v
		case "phone":
			cfg.Attributes.Phone = v
		case "group":
			cfg.Attributes.Group = v
		case "name":
			cfg.Attributes.Name = v
		default:
			return nil, fmt.Errorf("unknown attribute %q (known: %s)", k, strings.Join(directoryAttributes, ", "))
		}
	}
	if dc.TLS != nil {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: dc.TLS.ServerName}
		if dc.TLS.CAFile != "" {
			pem, err := os.ReadFile(repl.ReplaceAll(dc.TLS.CAFile, ""))
			if err != nil {
				return nil, fmt.Errorf("tls ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls ca_file %s: no PEM certificate in it", dc.TLS.CAFile)
			}
			cfg.TLS.RootCAs = pool
		}
	}
	return ldapdir.New(cfg)
}

// cleanupDirectories closes the directories' connections.
func (rt *otpRuntime) cleanupDirectories() {
	for _, d := range rt.ldap {
		_ = d.Close()
	}
}

// parseDirectory reads
//
//	directory <name> ldap {
//	    url <ldap[s]://host[:port]>...      # repeatable; tried in order
//	    bind_dn <dn>
//	    bind_password <password>            # {env.NAME} advised
//	    base_dn <dn>
//	    user_filter <filter with {login}>
//	    attributes {
//	        id <attr>  login <attr>  mail <attr>  phone <attr>  group <attr>  name <attr>
//	    }
//	    group_filter <filter with {dn}, {id} or {login}>
//	    group_base_dn <dn>
//	    group_attribute <attr>
//	    tls {
//	        ca_file <path>
//	        server_name <name>
//	    }
//	    timeout <duration>
//	    cache <duration>
//	    factors <factor>...
//	}
func (a *App) parseDirectory(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("directory needs <name> <kind> (e.g. directory corp ldap { ... })")
	}
	dc := DirectoryConfig{Name: args[0], Kind: args[1]}
	if dc.Kind != "ldap" {
		return d.Errf("directory %s: unknown kind %q (known: ldap)", dc.Name, dc.Kind)
	}
	err := eachOption(d, "directory "+dc.Name, []string{"url"}, func(opt string) error {
		var err error
		switch opt {
		case "url":
			urls := d.RemainingArgs()
			if len(urls) == 0 {
				return d.ArgErr()
			}
			dc.URLs = append(dc.URLs, urls...)
		case "bind_dn":
			dc.BindDN, err = oneArg(d)
		case "bind_password":
			dc.BindPassword, err = oneArg(d)
		case "base_dn":
			dc.BaseDN, err = oneArg(d)
		case "user_filter":
			dc.UserFilter, err = oneArg(d)
		case "group_filter":
			dc.GroupFilter, err = oneArg(d)
		case "group_base_dn":
			dc.GroupBaseDN, err = oneArg(d)
		case "group_attribute":
			dc.GroupAttribute, err = oneArg(d)
		case "attributes":
			err = dc.parseAttributes(d)
		case "tls":
			if d.NextArg() {
				return d.ArgErr()
			}
			dc.TLS = new(DirectoryTLS)
			err = eachOption(d, "directory tls", nil, func(opt string) error {
				var err error
				switch opt {
				case "ca_file":
					dc.TLS.CAFile, err = oneArg(d)
				case "server_name":
					dc.TLS.ServerName, err = oneArg(d)
				default:
					return d.Errf("unrecognized directory tls option %q", opt)
				}
				return err
			})
		case "timeout":
			err = parseDurationInto(d, &dc.Timeout)
		case "cache":
			err = parseDurationInto(d, &dc.Cache)
		case "factors":
			dc.Factors = d.RemainingArgs()
			if len(dc.Factors) == 0 {
				return d.ArgErr()
			}
			for _, f := range dc.Factors {
				if f != state.FactorEmail && f != state.FactorSMS {
					return d.Errf("directory factors: %q is not one a directory gives (%s, %s)", f, state.FactorEmail, state.FactorSMS)
				}
			}
		default:
			return d.Errf("unrecognized directory option %q", opt)
		}
		return err
	})
	if err != nil {
		return err
	}
	a.Directories = append(a.Directories, dc)
	return nil
}

// parseAttributes reads the attributes: pairs of a user field and an
// LDAP attribute (see parsePairs).
func (dc *DirectoryConfig) parseAttributes(d *caddyfile.Dispenser) error {
	dc.Attributes = map[string]string{}
	return parsePairs(d, "directory attribute", func(k, v string) error {
		if !slices.Contains(directoryAttributes, k) {
			return d.Errf("unknown directory attribute %q (known: %s)", k, strings.Join(directoryAttributes, ", "))
		}
		if _, dup := dc.Attributes[k]; dup {
			return d.Errf("directory attribute %q given twice", k)
		}
		dc.Attributes[k] = v
		return nil
	})
}

// withStoredTOTP gives the LDAP directories' users the TOTP secrets the
// store keeps for them (state.WithStoredTOTP), keeping the lookup order.
func (rt *otpRuntime) withStoredTOTP(st state.Store, idStoreName string) {
	if rt == nil || len(rt.ldap) == 0 {
		return
	}
	dirs := state.Directories{}
	if rt.users != nil {
		dirs = append(dirs, rt.users.Directory(idStoreName))
	}
	for _, d := range rt.ldap {
		dirs = append(dirs, state.WithStoredTOTP(d, st))
	}
	rt.dirs = dirs
}
