package caddymodule

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/authsession/caddy-authsession/handlers/portal"
)

// OIDCProvider is an OpenID Provider the portal signs users in through
// (see docs/oidc.md): authorization code flow with PKCE, the provider's
// ID token checked, then our second factor per SecondFactor, and
// optionally OpenID Connect Back-Channel Logout.
type OIDCProvider struct {
	// Name is used in the portal's URLs ({prefix}/oidc/<name>/...), in
	// user keys (<name>:<sub>) and in the factor OIDC:<name>: lower-case
	// letters, digits, - and _.
	Name string `json:"name"`
	// Title is shown on the sign-in button. Default: the name.
	Title string `json:"title,omitempty"`
	// Issuer is the provider's issuer URL; its discovery document is
	// read at first use (and retried while the provider is down).
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	// ClientSecret accepts {env.NAME}.
	ClientSecret string `json:"client_secret,omitempty"`
	// Scopes requested. Default: openid email profile.
	Scopes []string `json:"scopes,omitempty"`
	// Claims name the ID token claims of the user's fields. Defaults:
	// id sub, login preferred_username, mail email, group groups.
	Claims *OIDCClaims `json:"claims,omitempty"`
	// AllowedGroups, if any, admits only users in one of them.
	AllowedGroups []string `json:"allowed_groups,omitempty"`
	// SecondFactor is required, if_registered (default) or off.
	SecondFactor string `json:"second_factor,omitempty"`
	// BackchannelLogout serves POST {prefix}/oidc/<name>/backchannel.
	BackchannelLogout bool `json:"backchannel_logout,omitempty"`
	// LinkByEmail signs a user whose verified email is the mail of one
	// users-file user in as that user.
	LinkByEmail bool `json:"link_by_email,omitempty"`
	// EndSession ends the provider's session too when the user signs out
	// (RP-initiated logout).
	EndSession bool `json:"end_session,omitempty"`
	// Timeout bounds discovery and the code exchange. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// OIDCClaims name the claims a provider's user fields come from.
type OIDCClaims struct {
	ID    string `json:"id,omitempty"`
	Login string `json:"login,omitempty"`
	Mail  string `json:"mail,omitempty"`
	Group string `json:"group,omitempty"`
}

// providers builds the portal's relying parties of the app's providers,
// secrets resolved, and starts their discovery in the background.
func (a *App) oidcProviders(logger *zap.Logger) ([]*portal.OIDCProvider, error) {
	repl := caddy.NewReplacer()
	out := make([]*portal.OIDCProvider, 0, len(a.OIDCProviders))
	for _, c := range a.OIDCProviders {
		o := &portal.OIDCProvider{
			Name: c.Name, Title: c.Title, Issuer: repl.ReplaceAll(c.Issuer, ""),
			ClientID: repl.ReplaceAll(c.ClientID, ""), ClientSecret: repl.ReplaceAll(c.ClientSecret, ""),
			Scopes: c.Scopes, AllowedGroups: c.AllowedGroups, SecondFactor: c.SecondFactor,
			Backchannel: c.BackchannelLogout, LinkByEmail: c.LinkByEmail, EndSession: c.EndSession,
			Timeout: time.Duration(c.Timeout), Logger: logger,
		}
		if c.Claims != nil {
			o.Claims = portal.OIDCClaims{ID: c.Claims.ID, Login: c.Claims.Login, Mail: c.Claims.Mail, Group: c.Claims.Group}
		}
		if err := o.Check(); err != nil {
			return nil, err
		}
		o.Warm(time.Now)
		out = append(out, o)
	}
	return out, nil
}

// validateOIDC checks the providers' configuration.
func (a *App) validateOIDC() error {
	var names []string
	for _, c := range a.OIDCProviders {
		o := portal.OIDCProvider{Name: c.Name, Issuer: c.Issuer, ClientID: c.ClientID, SecondFactor: c.SecondFactor}
		if err := o.Check(); err != nil {
			return err
		}
		if slices.Contains(names, c.Name) {
			return fmt.Errorf("oidc provider %s configured twice", c.Name)
		}
		names = append(names, c.Name)
		if c.Timeout < 0 {
			return errors.New("oidc timeout must not be negative")
		}
	}
	return nil
}

// parseOIDC reads an oidc block of the global option.
//
// Syntax:
//
//	oidc <name> {
//	    issuer <url>
//	    client_id <id>
//	    [client_secret <secret>]         # {env.NAME} advised
//	    [title <text>]
//	    [scopes <scope>...]
//	    [claims <field> <claim> ...]      # fields id, login, mail, group; or a block of pairs
//	    [allowed_groups <group>...]
//	    [second_factor required|if_registered|off]
//	    [backchannel_logout]
//	    [link_by_email]
//	    [end_session]
//	    [timeout <duration>]
//	}
func (a *App) parseOIDC(d *caddyfile.Dispenser) error {
	c := OIDCProvider{}
	var err error
	if c.Name, err = oneArg(d); err != nil {
		return err
	}
	flag := func(b *bool) error {
		if d.NextArg() {
			return d.ArgErr()
		}
		*b = true
		return nil
	}
	list := func(l *[]string) error {
		*l = d.RemainingArgs()
		if len(*l) == 0 {
			return d.ArgErr()
		}
		return nil
	}
	if err := eachOption(d, "oidc", nil, func(opt string) error {
		var err error
		switch opt {
		case "issuer":
			c.Issuer, err = oneArg(d)
		case "client_id":
			c.ClientID, err = oneArg(d)
		case "client_secret":
			c.ClientSecret, err = oneArg(d)
		case "title":
			c.Title, err = oneArg(d)
		case "scopes":
			err = list(&c.Scopes)
		case "allowed_groups":
			err = list(&c.AllowedGroups)
		case "claims":
			c.Claims, err = parseOIDCClaims(d)
		case "second_factor":
			c.SecondFactor, err = oneArg(d)
		case "backchannel_logout":
			err = flag(&c.BackchannelLogout)
		case "link_by_email":
			err = flag(&c.LinkByEmail)
		case "end_session":
			err = flag(&c.EndSession)
		case "timeout":
			err = parseDurationInto(d, &c.Timeout)
		default:
			return d.Errf("unrecognized oidc option %q", opt)
		}
		return err
	}); err != nil {
		return err
	}
	o := portal.OIDCProvider{Name: c.Name, Issuer: c.Issuer, ClientID: c.ClientID, SecondFactor: c.SecondFactor}
	if err := o.Check(); err != nil {
		return d.Errf("%v", err)
	}
	a.OIDCProviders = append(a.OIDCProviders, c)
	return nil
}

// parseOIDCClaims reads the claims: pairs of field and claim names,
// either as the arguments (claims id sub login preferred_username) or in
// a block, one or more pairs a line.
func parseOIDCClaims(d *caddyfile.Dispenser) (*OIDCClaims, error) {
	c := new(OIDCClaims)
	set := func(field, claim string) error {
		switch field {
		case "id":
			c.ID = claim
		case "login":
			c.Login = claim
		case "mail":
			c.Mail = claim
		case "group":
			c.Group = claim
		default:
			return d.Errf("unrecognized claims field %q (id, login, mail, group)", field)
		}
		return nil
	}
	return c, parsePairs(d, "claims field", set)
}
