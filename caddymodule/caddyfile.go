package caddymodule

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
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
//	    [max_sessions_per_user <n>]
//	    [max_search_results <n>]
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
//	    [directory <name> ldap { ... }]        # repeatable; see parseDirectory
//	    [otp { ... }]                          # see parseOTP
//	    [risk_analyzer { ... }]                # see parseRiskAnalyzer
//	    [authn { ... }]                        # see parseAuthn
//	    [oidc <name> { ... }]                  # repeatable; see parseOIDC
//	    [webauthn { ... }]                     # see parseWebAuthn
//	    [stats_interval <duration>]
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachOption(d, "", []string{"api_user", "api_token", "api_token_sha256", "oidc", "directory"}, func(opt string) error {
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
		case "max_sessions_per_user":
			a.MaxSessionsPerUser, err = intArg(d)
		case "max_search_results":
			a.MaxSearchResults, err = intArg(d)
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
		case "oidc":
			err = a.parseOIDC(d)
		case "webauthn":
			err = a.parseWebAuthn(d)
		case "directory":
			err = a.parseDirectory(d)
		case "stats_interval":
			err = parseDurationInto(d, &a.StatsInterval)
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
	if err := c.spec().Check(); err != nil {
		return d.Errf("cookie: %v", err)
	}
	a.Cookie = c
	return nil
}

// parseOTP reads the otp block of the global option.
//
// Syntax:
//
//	otp {
//	    [digits <n>]
//	    [lifetime <duration>]
//	    [max_attempts <n>]
//	    [cooldown <duration>]
//	    [sends_per_hour <n>]
//	    [expose_otp on|off]
//	    [key <base64 key>]
//	    [totp_issuer <name>]
//	    [delivery_timeout <duration>]
//	    [delivery_attempts <n>]
//	    [log_delivery]                 # UNSAFE: codes in the log
//	    [smtp {
//	        host <host>
//	        [port <port>]
//	        [tls none|starttls|tls]
//	        [username <user>]
//	        [password <password>]
//	        from <address>
//	        [subject <template>]
//	        [body <template>]
//	    }]
//	    [webhook <url> <secret>]
//	}
func (a *App) parseOTP(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	c := new(OTPConfig)
	if err := eachOption(d, "otp", nil, func(opt string) error {
		var err error
		switch opt {
		case "digits":
			c.Digits, err = intArg(d)
		case "lifetime":
			err = parseDurationInto(d, &c.Lifetime)
		case "max_attempts":
			c.MaxAttempts, err = intArg(d)
		case "cooldown":
			err = parseDurationInto(d, &c.Cooldown)
		case "sends_per_hour":
			c.SendsPerHour, err = intArg(d)
		case "expose_otp":
			var v string
			v, err = oneArg(d)
			switch v {
			case "on":
				c.ExposeOTP = new(true)
			case "off":
				c.ExposeOTP = new(false)
			default:
				if err == nil {
					return d.Errf("expose_otp must be on or off, not %q", v)
				}
			}
		case "key":
			c.Key, err = oneArg(d)
		case "totp_issuer":
			c.TOTPIssuer, err = oneArg(d)
		case "delivery_timeout":
			err = parseDurationInto(d, &c.DeliveryTimeout)
		case "delivery_attempts":
			c.DeliveryAttempts, err = intArg(d)
		case "log_delivery":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.LogDelivery = true
		case "smtp":
			c.SMTP, err = parseSMTP(d)
		case "webhook":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("webhook needs <url> <secret>")
			}
			c.Webhook = &WebhookConfig{URL: args[0], Secret: args[1]}
		default:
			return d.Errf("unrecognized otp option %q", opt)
		}
		return err
	}); err != nil {
		return err
	}
	a.OTP = c
	return nil
}

func parseSMTP(d *caddyfile.Dispenser) (*SMTPConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	s := new(SMTPConfig)
	err := eachOption(d, "smtp", nil, func(opt string) error {
		var err error
		switch opt {
		case "host":
			s.Host, err = oneArg(d)
		case "port":
			s.Port, err = intArg(d)
		case "tls":
			s.TLS, err = oneArg(d)
			if err == nil && s.TLS != "none" && s.TLS != "starttls" && s.TLS != "tls" {
				return d.Errf("smtp tls must be none, starttls or tls, not %q", s.TLS)
			}
		case "username":
			s.Username, err = oneArg(d)
		case "password":
			s.Password, err = oneArg(d)
		case "from":
			s.From, err = oneArg(d)
		case "subject":
			s.Subject, err = oneArg(d)
		case "body":
			s.Body, err = oneArg(d)
		default:
			return d.Errf("unrecognized smtp option %q", opt)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if s.Host == "" || s.From == "" {
		return nil, d.Err("smtp needs host and from")
	}
	return s, nil
}

// parseAuthn reads the authn block of the global option.
//
// Syntax:
//
//	authn {
//	    [client <client_id> <bcrypt or hex sha-256 of the secret>]   # repeatable
//	    [accept_unknown_users]
//	    [default_factors <factor...>]
//	    [max_ttl <duration>]
//	}
func (a *App) parseAuthn(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	c := new(AuthnConfig)
	if err := eachOption(d, "authn", []string{"client"}, func(opt string) error {
		switch opt {
		case "client":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("client needs <client_id> <secret_hash>")
			}
			c.Clients = append(c.Clients, AuthnClient{ClientID: args[0], SecretHash: args[1]})
		case "accept_unknown_users":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.AcceptUnknownUsers = true
		case "default_factors":
			c.DefaultFactors = d.RemainingArgs()
			if len(c.DefaultFactors) == 0 {
				return d.ArgErr()
			}
			for _, f := range c.DefaultFactors {
				if !slices.Contains(state.Factors, f) {
					return d.Errf("unknown factor %q (known: %s)", f, strings.Join(state.Factors, ", "))
				}
			}
		case "max_ttl":
			if err := parseDurationInto(d, &c.MaxTTL); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized authn option %q", opt)
		}
		return nil
	}); err != nil {
		return err
	}
	a.Authn = c
	return nil
}

// parseRiskAnalyzer reads the global option's risk_analyzer block.
//
// Syntax:
//
//	risk_analyzer {
//	    [success_status <int...>]   # default 0
//	    [pending_status <int...>]   # default none
//	    [device_trust <duration>]   # default 720h; 0 disables
//	    [history_size <n>]          # default 50; 0 keeps none
//	}
func (a *App) parseRiskAnalyzer(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	c := new(RiskAnalyzerConfig)
	if err := eachOption(d, "risk_analyzer", nil, func(opt string) error {
		switch opt {
		case "success_status", "pending_status":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			for _, s := range args {
				v, err := strconv.Atoi(s)
				if err != nil {
					return d.Errf("%s: %q is not an integer", opt, s)
				}
				list := &c.SuccessStatuses
				if opt == "pending_status" {
					list = &c.PendingStatuses
				}
				if slices.Contains(*list, v) {
					return d.Errf("%s: %d listed twice", opt, v)
				}
				*list = append(*list, v)
			}
		case "device_trust":
			dur, err := parseDuration(d)
			if err != nil {
				return err
			}
			cd := caddy.Duration(dur)
			c.DeviceTrust = &cd
		case "history_size":
			s, err := oneArg(d)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return d.Errf("history_size: %q is not a non-negative integer", s)
			}
			c.HistorySize = &n
		default:
			return d.Errf("unrecognized risk_analyzer option %q", opt)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, v := range c.PendingStatuses {
		if slices.Contains(c.SuccessStatuses, v) || (len(c.SuccessStatuses) == 0 && v == 0) {
			return d.Errf("risk_analyzer: status %d is both a success and a pending status", v)
		}
	}
	a.RiskAnalyzer = c
	return nil
}

func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // directive name
	if !h.NextArg() {
		return nil, h.Errf("authsession needs a kind: api, gate, portal or health")
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
	case "health":
		m = new(Health)
	default:
		return nil, h.Errf("unknown authsession kind %q: want api, gate, portal or health", h.Val())
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
//	authsession [<matcher>] api [<family...>] {
//		openapi <path>
//	}
//
// where each family is one of: oam, risk_analyzer, otp, authn. Default:
// all families. openapi serves the families' OpenAPI documents as
// <path>/<family>.yaml (off by default).
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
	for d.NextBlock(0) {
		switch d.Val() {
		case "openapi":
			if h.OpenAPI != "" {
				return d.Err("openapi given twice")
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.OpenAPI = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			if !strings.HasPrefix(h.OpenAPI, "/") {
				return d.Errf("openapi: %q must be a URL path starting with /", h.OpenAPI)
			}
		default:
			return d.Errf("unknown authsession api option %q (known: openapi)", d.Val())
		}
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
//	    [pass_session_credentials]
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
		case "pass_session_credentials":
			if d.NextArg() {
				return d.ArgErr()
			}
			g.PassSessionCredentials = true
		default:
			return d.Errf("unrecognized authsession gate option %q", opt)
		}
		return err
	})
}

// UnmarshalCaddyfile reads the "authsession portal" directive.
//
// Syntax:
//
//	authsession portal {
//	    [prefix <path>]
//	    [templates <dir>]
//	    [title <text>]
//	    [logo <url>]
//	    [max_failures <n>]
//	    [failure_window <duration>]
//	    [trust_device <duration>|off]
//	}
func (p *Portal) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachOption(d, "portal", nil, func(opt string) error {
		var err error
		switch opt {
		case "prefix":
			p.Prefix, err = oneArg(d)
		case "templates":
			p.Templates, err = oneArg(d)
		case "title":
			p.Title, err = oneArg(d)
		case "logo":
			p.Logo, err = oneArg(d)
		case "max_failures":
			p.MaxFailures, err = intArg(d)
		case "failure_window":
			err = parseDurationInto(d, &p.FailureWindow)
		case "trust_device":
			var v string
			if v, err = oneArg(d); err == nil {
				if v == "off" {
					p.TrustDevice = -1
					break
				}
				dur, perr := caddy.ParseDuration(v)
				if perr != nil || dur <= 0 {
					return d.Errf("trust_device: want a positive duration or off, got %q", v)
				}
				p.TrustDevice = caddy.Duration(dur)
			}
		default:
			return d.Errf("unrecognized portal option %q", opt)
		}
		return err
	})
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens.
//
// Syntax:
//
//	store memory {
//	    [cleanup_interval <duration>]
//	}
func (m *MemoryStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "memory"
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachOption(d, "store memory", nil, func(opt string) error {
		switch opt {
		case "cleanup_interval":
			dur, err := parseDuration(d)
			if err != nil {
				return err
			}
			m.CleanupInterval = caddy.Duration(dur)
		default:
			return d.Errf("unrecognized store memory option %q", opt)
		}
		return nil
	})
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens.
//
// Syntax:
//
//	store file [<path>] {
//	    [encryption_key <base64 key>]
//	    [flush_interval <duration>]
//	    [sweep_interval <duration>]
//	}
func (fs *FileStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "file"
	if d.NextArg() {
		fs.Path = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return eachOption(d, "store file", nil, func(opt string) error {
		switch opt {
		case "encryption_key":
			if !d.NextArg() {
				return d.ArgErr()
			}
			fs.EncryptionKey = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		case "flush_interval", "sweep_interval":
			dur, err := parseDuration(d)
			if err != nil {
				return err
			}
			if dur == 0 {
				return d.Errf("%s must be positive", opt)
			}
			if opt == "flush_interval" {
				fs.FlushInterval = caddy.Duration(dur)
			} else {
				fs.SweepInterval = caddy.Duration(dur)
			}
		default:
			return d.Errf("unrecognized store file option %q", opt)
		}
		return nil
	})
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens.
//
// Syntax:
//
//	store redis [<url>] {
//	    [addresses <host:port...>]
//	    [username <user>]
//	    [password <password>]
//	    [tls {
//	        [server_name <name>]
//	        [ca_file <path>]
//	    }]
//	    [db <number>]
//	    [key_prefix <prefix>]
//	    [sentinel_master <name>]
//	    [cluster]
//	    [timeout <duration>]
//	    [max_staleness <duration>]
//	}
func (rs *RedisStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "redis"
	if d.NextArg() {
		rs.URL = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	if err := eachOption(d, "store redis", nil, func(opt string) error {
		var err error
		switch opt {
		case "addresses":
			rs.Addresses = d.RemainingArgs()
			if len(rs.Addresses) == 0 {
				return d.ArgErr()
			}
		case "username":
			rs.Username, err = oneArg(d)
		case "password":
			rs.Password, err = oneArg(d)
		case "tls":
			err = rs.parseTLS(d)
		case "db":
			var s string
			if s, err = oneArg(d); err == nil {
				if rs.DB, err = strconv.Atoi(s); err != nil || rs.DB < 0 {
					return d.Errf("store redis: db must be a non-negative number, not %q", s)
				}
			}
		case "key_prefix":
			rs.KeyPrefix, err = oneArg(d)
		case "sentinel_master":
			rs.SentinelMaster, err = oneArg(d)
		case "cluster":
			if d.NextArg() {
				return d.ArgErr()
			}
			rs.Cluster = true
		case "timeout":
			var dur time.Duration
			dur, err = parseDuration(d)
			rs.Timeout = caddy.Duration(dur)
		case "max_staleness":
			var dur time.Duration
			dur, err = parseDuration(d)
			rs.MaxStaleness = caddy.Duration(dur)
		default:
			return d.Errf("unrecognized store redis option %q", opt)
		}
		return err
	}); err != nil {
		return err
	}
	if rs.URL == "" && len(rs.Addresses) == 0 {
		return d.Err("store redis needs a url or addresses")
	}
	return nil
}

func (rs *RedisStore) parseTLS(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	rs.TLS = new(RedisTLS)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "server_name":
			rs.TLS.ServerName, err = oneArg(d)
		case "ca_file":
			rs.TLS.CAFile, err = oneArg(d)
		default:
			return d.Errf("unrecognized store redis tls option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

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

func intArg(d *caddyfile.Dispenser) (int, error) {
	name := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, d.Errf("%s must be a positive integer, not %q", name, v)
	}
	return n, nil
}

// parseDuration reads exactly one duration argument.
func parseDuration(d *caddyfile.Dispenser) (time.Duration, error) {
	name := d.Val()
	if !d.NextArg() {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(d.Val())
	if err != nil {
		return 0, d.Errf("%s: bad duration %q: %v", name, d.Val(), err)
	}
	if dur < 0 {
		return 0, d.Errf("%s: duration must not be negative", name)
	}
	if d.NextArg() {
		return 0, d.ArgErr()
	}
	return dur, nil
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

// parsePairs reads a subdirective made of pairs of a name and a value,
// given either as its arguments on one line ("claims id sub login
// preferred_username") or in a block of one or more pairs a line. (The
// Caddyfile grammar has no one-line block: "{ id sub }" on one line is
// refused by Caddy's parser before any module sees it.) set takes each
// pair in order; what names a name in errors.
func parsePairs(d *caddyfile.Dispenser, what string, set func(name, value string) error) error {
	pairs := func(args []string) error {
		if len(args)%2 != 0 {
			return d.Errf("%s %q has no value: give pairs of a name and a value", what, args[len(args)-1])
		}
		for i := 0; i < len(args); i += 2 {
			if err := set(args[i], args[i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	args := d.RemainingArgs()
	if err := pairs(args); err != nil {
		return err
	}
	n := len(args) / 2
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		line := append([]string{d.Val()}, d.RemainingArgs()...)
		if err := pairs(line); err != nil {
			return err
		}
		n += len(line) / 2
	}
	if n == 0 {
		return d.Errf("no %s pairs given", what)
	}
	return nil
}
