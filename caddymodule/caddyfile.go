package caddymodule

import (
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authsession/caddy-authsession/handlers"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("authsession", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("authsession", parseHandlerDirective)
	// Authentication comes before the handlers it protects, like basic_auth.
	httpcaddyfile.RegisterDirectiveOrder("authsession", httpcaddyfile.Before, "basic_auth")
}

func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "authsession", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from the global option block.
//
// Syntax:
//
//	authsession {
//	    [store <module> [<args...>] [{ ... }]]
//	    [session_lifetime <duration>]
//	    [idle_timeout <duration>|off]
//	    [touch_interval <duration>]
//	    [block_duration <duration>]
//	    [store_timeout <duration>]
//	    [id_store_name <name>]
//	    [require_second_factor]
//	    [cookie {
//	        [name <name>]
//	        [domain <domain>]
//	        [path <path>]
//	        [insecure]
//	    }]
//	    [api_user <username> <bcrypt_hash>]   # repeatable
//	    [api_token <token>]                    # repeatable; {env.NAME} advised
//	    [api_token_sha256 <hex>]               # repeatable
//	    [seal_key <base64 key>]
//	    [users_file <path>]
//	    [otp { ... }]                          # see parseOTP
//	    [risk_analyzer { ... }]                # see parseRiskAnalyzer
//	    [authn { ... }]                        # see parseAuthn
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachOption(d, "", []string{"api_user", "api_token", "api_token_sha256"}, func(opt string) error {
		var err error
		switch opt {
		case "store":
			err = a.parseStore(d)
		case "session_lifetime":
			err = parseDurationInto(d, &a.SessionLifetime)
		case "idle_timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if d.Val() == "off" {
				if d.NextArg() {
					return d.ArgErr()
				}
				a.IdleTimeout = -1
				break
			}
			d.Prev()
			err = parseDurationInto(d, &a.IdleTimeout)
		case "touch_interval":
			err = parseDurationInto(d, &a.TouchInterval)
		case "block_duration":
			err = parseDurationInto(d, &a.BlockDuration)
		case "store_timeout":
			err = parseDurationInto(d, &a.StoreTimeout)
		case "id_store_name":
			a.IDStoreName, err = oneArg(d)
		case "require_second_factor":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.RequireSecondFactor = true
		case "cookie":
			err = a.parseCookie(d)
		case "api_user":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("api_user needs <username> <bcrypt_hash>")
			}
			a.APIUsers = append(a.APIUsers, APIUser{Username: args[0], PasswordHash: args[1]})
		case "api_token":
			var tok string
			tok, err = oneArg(d)
			a.APITokens = append(a.APITokens, APIToken{Token: tok})
		case "api_token_sha256":
			var sum string
			sum, err = oneArg(d)
			a.APITokens = append(a.APITokens, APIToken{SHA256: sum})
		case "seal_key":
			a.SealKey, err = oneArg(d)
		case "users_file":
			a.UsersFile, err = oneArg(d)
		case "otp":
			err = a.parseOTP(d)
		case "risk_analyzer":
			err = a.parseRiskAnalyzer(d)
		case "authn":
			err = a.parseAuthn(d)
		default:
			return d.Errf("unrecognized authsession option %q", opt)
		}
		return err
	})
}

// parseStore reads "store <module> ..." through the module's own
// Caddyfile unmarshaler.
func (a *App) parseStore(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	name := d.Val()
	mod, err := caddyfile.UnmarshalModule(d, "authsession.stores."+name)
	if err != nil {
		return err
	}
	a.StoreRaw = caddyconfig.JSONModuleObject(mod, "module", name, nil)
	return nil
}

func (a *App) parseCookie(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	c := new(CookieConfig)
	if err := eachOption(d, "cookie", nil, func(opt string) error {
		var err error
		switch opt {
		case "name":
			c.Name, err = oneArg(d)
		case "domain":
			c.Domain, err = oneArg(d)
		case "path":
			c.Path, err = oneArg(d)
		case "insecure":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.Insecure = true
		default:
			return d.Errf("unrecognized cookie option %q", opt)
		}
		return err
	}); err != nil {
		return err
	}
	a.Cookie = c
	return nil
}

func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // directive name
	if !h.NextArg() {
		return nil, h.Errf("authsession needs a kind: api, gate or portal")
	}
	var m interface {
		caddyhttp.MiddlewareHandler
		caddyfile.Unmarshaler
	}
	switch h.Val() {
	case "api":
		m = new(API)
	case "gate":
		m = new(Gate)
	case "portal":
		m = new(Portal)
	default:
		return nil, h.Errf("unknown authsession kind %q: want api, gate or portal", h.Val())
	}
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return m, nil
}

// UnmarshalCaddyfile sets up the API handler; the dispenser is positioned
// on "api".
//
// Syntax:
//
//	authsession [<matcher>] api [<family...>]
//
// where each family is one of: oam, risk_analyzer, otp, authn. Default:
// all families.
func (h *API) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for d.NextArg() {
		name := d.Val()
		if !slices.Contains(familyNames, name) {
			return d.Errf("unknown API family %q (known: %s)", name, strings.Join(familyNames, ", "))
		}
		if slices.Contains(h.Families, name) {
			return d.Errf("API family %q listed twice", name)
		}
		h.Families = append(h.Families, name)
	}
	if d.NextBlock(0) {
		return d.Errf("authsession api takes no block, found %q", d.Val())
	}
	return nil
}

// UnmarshalCaddyfile sets up the gate; the dispenser is positioned on
// "gate".
//
// Syntax:
//
//	authsession [<matcher>] gate {
//	    [login_url <url>]
//	    [session_header <header> [<scheme>]]
//	    [upstream_header <header> <field>]   # repeatable
//	    [require_group <group...>]
//	    [max_auth_age <duration>]
//	    [require_factor <factor>]
//	}
//
// Fields: user_id, login, group, status, id_store, auth_time, factors,
// session_index, attr.<name>.
func (g *Gate) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachOption(d, "", []string{"upstream_header"}, func(opt string) error {
		var err error
		switch opt {
		case "login_url":
			g.LoginURL, err = oneArg(d)
		case "session_header":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("session_header needs <header> [<scheme>]")
			}
			g.SessionHeader = args[0]
			if len(args) == 2 {
				g.SessionScheme = args[1]
			}
		case "upstream_header":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("upstream_header needs <header> <field>")
			}
			if !handlers.ValidField(args[1]) {
				return d.Errf("upstream_header %s: unknown session field %q", args[0], args[1])
			}
			if g.UpstreamHeaders == nil {
				g.UpstreamHeaders = map[string]string{}
			}
			name := http.CanonicalHeaderKey(args[0])
			if _, dup := g.UpstreamHeaders[name]; dup {
				return d.Errf("upstream_header %s given twice", name)
			}
			g.UpstreamHeaders[name] = args[1]
		case "require_group":
			g.RequireGroups = d.RemainingArgs()
			if len(g.RequireGroups) == 0 {
				return d.ArgErr()
			}
		case "max_auth_age":
			err = parseDurationInto(d, &g.MaxAuthAge)
		case "require_factor":
			g.RequireFactor, err = oneArg(d)
		default:
			return d.Errf("unrecognized authsession gate option %q", opt)
		}
		return err
	})
}

// oneArg reads exactly one argument.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

func parseDurationInto(d *caddyfile.Dispenser, into *caddy.Duration) error {
	name := d.Val()
	dur, err := parseDuration(d)
	if err != nil {
		return err
	}
	if dur == 0 {
		return d.Errf("%s must be positive", name)
	}
	*into = caddy.Duration(dur)
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*API)(nil)
	_ caddyfile.Unmarshaler = (*Gate)(nil)
)

// eachOption calls fn for each option of the block at d's cursor and
// refuses an option given twice, unless it is one of repeatable. what
// names the block in that error ("" at the top of a directive).
func eachOption(d *caddyfile.Dispenser, what string, repeatable []string, fn func(opt string) error) error {
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] && !slices.Contains(repeatable, opt) {
			return d.Errf("%s given twice", strings.TrimSpace(what+" "+opt))
		}
		seen[opt] = true
		if err := fn(opt); err != nil {
			return err
		}
	}
	return nil
}
