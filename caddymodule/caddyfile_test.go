package caddymodule

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

const testHash = "$2a$04$ZiUS0wcKyHEdBbRexZK2ZOz8AmWRI1E5lYF7.zTQTgbzCRU6IlRKi"

func parseApp(input string) (*App, error) {
	a := new(App)
	err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
	return a, err
}

// normJSON re-encodes JSON so that key order and spacing do not matter.
func normJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	out, _ := json.MarshalIndent(v, "", "\t")
	return string(out)
}

func TestGlobalOptionEveryOption(t *testing.T) {
	a, err := parseApp(`authsession {
		store memory {
			cleanup_interval 2m
		}
		session_lifetime 4h
		idle_timeout 15m
		touch_interval 30s
		block_duration 10m
		store_timeout 2s
		id_store_name LDAP1
		max_sessions_per_user 3
		max_search_results 50
		require_second_factor
		cookie {
			name sid
			domain example.com
			path /app
			insecure
		}
		api_user admin ` + testHash + `
		api_user {env.OPS_USER} {env.OPS_HASH}
		api_token {env.TOKEN}
		api_token demo-token
		api_token_sha256 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
		seal_key {env.SEAL_KEY}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := normJSON(t, a.StoreRaw); got != normJSON(t, []byte(`{"module":"memory","cleanup_interval":120000000000}`)) {
		t.Errorf("store = %s", got)
	}
	a.StoreRaw = nil
	want := &App{
		SessionLifetime:     caddy.Duration(4 * time.Hour),
		IdleTimeout:         caddy.Duration(15 * time.Minute),
		TouchInterval:       caddy.Duration(30 * time.Second),
		BlockDuration:       caddy.Duration(10 * time.Minute),
		StoreTimeout:        caddy.Duration(2 * time.Second),
		IDStoreName:         "LDAP1",
		MaxSessionsPerUser:  3,
		MaxSearchResults:    50,
		RequireSecondFactor: true,
		Cookie:              &CookieConfig{Name: "sid", Domain: "example.com", Path: "/app", Insecure: true},
		APIUsers: []APIUser{
			{Username: "admin", PasswordHash: testHash},
			{Username: "{env.OPS_USER}", PasswordHash: "{env.OPS_HASH}"},
		},
		APITokens: []APIToken{
			{Token: "{env.TOKEN}"},
			{Token: "demo-token"},
			{SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		},
		SealKey: "{env.SEAL_KEY}",
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", a, want)
	}
}

func TestGlobalOptionEmptyAndOff(t *testing.T) {
	a, err := parseApp(`authsession`)
	if err != nil || !reflect.DeepEqual(a, new(App)) {
		t.Fatalf("bare option: %+v, %v", a, err)
	}
	a, err = parseApp("authsession {\n}")
	if err != nil || !reflect.DeepEqual(a, new(App)) {
		t.Fatalf("empty block: %+v, %v", a, err)
	}
	a, err = parseApp("authsession {\nidle_timeout off\ncookie\nstore memory\n}")
	if err != nil {
		t.Fatal(err)
	}
	if a.IdleTimeout >= 0 {
		t.Errorf("idle_timeout off = %v, want negative (disabled)", a.IdleTimeout)
	}
	if a.Cookie == nil || *a.Cookie != (CookieConfig{}) {
		t.Errorf("cookie without a block = %+v", a.Cookie)
	}
	if got := normJSON(t, a.StoreRaw); got != normJSON(t, []byte(`{"module":"memory"}`)) {
		t.Errorf("store memory = %s", got)
	}
}

// rejection is a Caddyfile that must be refused with an error mentioning
// want (the offending token or option).
type rejection struct {
	name, input, want string
}

func TestGlobalOptionRejections(t *testing.T) {
	tests := []rejection{
		{"argument to the option", "authsession extra {\n}", "'extra'"},
		{"unknown option", "authsession {\nbogus 1\n}", `"bogus"`},
		{"option with a typo", "authsession {\nsession_lifetim 1h\n}", `"session_lifetim"`},
		{"repeated session_lifetime", "authsession {\nsession_lifetime 1h\nsession_lifetime 2h\n}", "session_lifetime given twice"},
		{"repeated cookie", "authsession {\ncookie\ncookie\n}", "cookie given twice"},
		{"repeated store", "authsession {\nstore memory\nstore memory\n}", "store given twice"},
		{"repeated seal_key", "authsession {\nseal_key a\nseal_key b\n}", "seal_key given twice"},
		{"repeated require_second_factor", "authsession {\nrequire_second_factor\nrequire_second_factor\n}", "require_second_factor given twice"},
		{"repeated id_store_name", "authsession {\nid_store_name a\nid_store_name b\n}", "id_store_name given twice"},
		{"session_lifetime missing", "authsession {\nsession_lifetime\n}", "'session_lifetime'"},
		{"session_lifetime extra", "authsession {\nsession_lifetime 1h 2h\n}", "'2h'"},
		{"session_lifetime bad", "authsession {\nsession_lifetime soon\n}", `"soon"`},
		{"session_lifetime zero", "authsession {\nsession_lifetime 0\n}", "session_lifetime must be positive"},
		{"session_lifetime negative", "authsession {\nsession_lifetime -1h\n}", "session_lifetime: duration must not be negative"},
		{"idle_timeout missing", "authsession {\nidle_timeout\n}", "'idle_timeout'"},
		{"idle_timeout bad", "authsession {\nidle_timeout never\n}", `"never"`},
		{"idle_timeout off extra", "authsession {\nidle_timeout off now\n}", "'now'"},
		{"idle_timeout zero", "authsession {\nidle_timeout 0s\n}", "idle_timeout must be positive"},
		{"touch_interval bad", "authsession {\ntouch_interval 1x\n}", `"1x"`},
		{"touch_interval missing", "authsession {\ntouch_interval\n}", "'touch_interval'"},
		{"block_duration bad", "authsession {\nblock_duration forever\n}", `"forever"`},
		{"block_duration extra", "authsession {\nblock_duration 1m 2m\n}", "'2m'"},
		{"store_timeout bad", "authsession {\nstore_timeout fast\n}", `"fast"`},
		{"store_timeout zero", "authsession {\nstore_timeout 0\n}", "store_timeout must be positive"},
		{"id_store_name missing", "authsession {\nid_store_name\n}", "'id_store_name'"},
		{"id_store_name extra", "authsession {\nid_store_name a b\n}", "'b'"},
		{"max_sessions_per_user zero", "authsession {\nmax_sessions_per_user 0\n}", `max_sessions_per_user must be a positive integer, not "0"`},
		{"max_sessions_per_user missing", "authsession {\nmax_sessions_per_user\n}", "'max_sessions_per_user'"},
		{"max_search_results bad", "authsession {\nmax_search_results many\n}", `max_search_results must be a positive integer, not "many"`},
		{"max_search_results extra", "authsession {\nmax_search_results 5 6\n}", "'6'"},
		{"repeated max_search_results", "authsession {\nmax_search_results 5\nmax_search_results 6\n}", "max_search_results given twice"},
		{"require_second_factor argument", "authsession {\nrequire_second_factor yes\n}", "'yes'"},
		{"api_user missing hash", "authsession {\napi_user admin\n}", "api_user needs <username> <bcrypt_hash>"},
		{"api_user extra", "authsession {\napi_user admin hash more\n}", "api_user needs"},
		{"api_user bare", "authsession {\napi_user\n}", "api_user needs"},
		{"api_token missing", "authsession {\napi_token\n}", "'api_token'"},
		{"api_token extra", "authsession {\napi_token a b\n}", "'b'"},
		{"api_token_sha256 missing", "authsession {\napi_token_sha256\n}", "'api_token_sha256'"},
		{"seal_key missing", "authsession {\nseal_key\n}", "'seal_key'"},
		{"seal_key extra", "authsession {\nseal_key a b\n}", "'b'"},
		{"cookie argument", "authsession {\ncookie sid\n}", "'sid'"},
		{"cookie unknown", "authsession {\ncookie {\nsamesite lax\n}\n}", `"samesite"`},
		{"cookie name missing", "authsession {\ncookie {\nname\n}\n}", "'name'"},
		{"cookie name extra", "authsession {\ncookie {\nname a b\n}\n}", "'b'"},
		{"cookie domain missing", "authsession {\ncookie {\ndomain\n}\n}", "'domain'"},
		{"cookie path extra", "authsession {\ncookie {\npath /a /b\n}\n}", "'/b'"},
		{"cookie insecure argument", "authsession {\ncookie {\ninsecure yes\n}\n}", "'yes'"},
		{"cookie repeated name", "authsession {\ncookie {\nname a\nname b\n}\n}", "cookie name given twice"},
		{"cookie repeated insecure", "authsession {\ncookie {\ninsecure\ninsecure\n}\n}", "cookie insecure given twice"},
		{"cookie __Host- insecure", "authsession {\ncookie {\nname __Host-sid\ninsecure\n}\n}", "__Host- cookie name needs Secure"},
		{"cookie __Host- domain", "authsession {\ncookie {\nname __Host-sid\ndomain example.com\n}\n}", "__Host- cookie name cannot have a domain"},
		{"cookie __Host- path", "authsession {\ncookie {\nname __Host-sid\npath /app\n}\n}", "__Host- cookie name needs path /"},
		{"cookie __Secure- insecure", "authsession {\ncookie {\nname __Secure-sid\ninsecure\n}\n}", "__Secure- cookie name needs Secure"},
		{"store missing module", "authsession {\nstore\n}", "'store'"},
		{"store unknown module", "authsession {\nstore postgres\n}", "authsession.stores.postgres"},
		{"store memory argument", "authsession {\nstore memory big\n}", "'big'"},
		{"store memory unknown", "authsession {\nstore memory {\nmax_items 5\n}\n}", `"max_items"`},
		{"store memory cleanup missing", "authsession {\nstore memory {\ncleanup_interval\n}\n}", "'cleanup_interval'"},
		{"store memory cleanup bad", "authsession {\nstore memory {\ncleanup_interval often\n}\n}", `"often"`},
		{"store memory cleanup extra", "authsession {\nstore memory {\ncleanup_interval 1m 2m\n}\n}", "'2m'"},
		{"store memory cleanup negative", "authsession {\nstore memory {\ncleanup_interval -1m\n}\n}", "must not be negative"},
		{"store memory cleanup repeated", "authsession {\nstore memory {\ncleanup_interval 1m\ncleanup_interval 2m\n}\n}", "cleanup_interval given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseApp(tt.input)
			assertRejected(t, err, tt.want)
		})
	}
}

func assertRejected(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want an error mentioning %s", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not mention %s", err, want)
	}
	if !strings.Contains(err.Error(), "Testfile:") {
		t.Fatalf("error %q does not say where", err)
	}
}

// parseDirective runs the handler directive's parser on input.
func parseDirective(input string) (any, error) {
	return parseHandlerDirective(httpcaddyfile.Helper{Dispenser: caddyfile.NewTestDispenser(input)})
}

func TestGateDirectiveEveryOption(t *testing.T) {
	h, err := parseDirective(`authsession gate {
		login_url https://login.example.com/signin?app=demo
		session_header Authorization Bearer
		upstream_header X-Auth-User login
		upstream_header x-auth-mail attr.mail
		upstream_header X-Auth-Status status
		require_group admins ops
		max_auth_age 10m
		require_factor ChallengeOMATOTP
	}`)
	if err != nil {
		t.Fatal(err)
	}
	want := &Gate{
		LoginURL:        "https://login.example.com/signin?app=demo",
		SessionHeader:   "Authorization",
		SessionScheme:   "Bearer",
		UpstreamHeaders: map[string]string{"X-Auth-User": "login", "X-Auth-Mail": "attr.mail", "X-Auth-Status": "status"},
		RequireGroups:   []string{"admins", "ops"},
		MaxAuthAge:      caddy.Duration(10 * time.Minute),
		RequireFactor:   "ChallengeOMATOTP",
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("parsed %+v\nwant %+v", h, want)
	}
	if err := h.(*Gate).Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	h, err = parseDirective("authsession gate {\nsession_header X-Session\n}")
	if err != nil {
		t.Fatal(err)
	}
	if g := h.(*Gate); g.SessionHeader != "X-Session" || g.SessionScheme != "" {
		t.Fatalf("session_header without scheme: %+v", g)
	}
	for _, in := range []string{"authsession gate", "authsession gate {\n}"} {
		h, err := parseDirective(in)
		if err != nil || !reflect.DeepEqual(h, new(Gate)) {
			t.Fatalf("%q: %+v, %v", in, h, err)
		}
	}
}

func TestAPIDirective(t *testing.T) {
	for in, want := range map[string][]string{
		"authsession api":           nil,
		"authsession api oam":       {"oam"},
		"authsession api {\n}":      nil,
		"authsession api oam {\n}":  {"oam"},
		"authsession api\nrespond ": nil,
	} {
		h, err := parseDirective(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := h.(*API).Families; !slices.Equal(got, want) {
			t.Errorf("%q: families %v, want %v", in, got, want)
		}
	}
}

func TestAPIOpenAPIOption(t *testing.T) {
	for in, want := range map[string]string{
		"authsession api {\nopenapi /openapi\n}":         "/openapi",
		"authsession api oam {\n\topenapi /docs/api/\n}": "/docs/api/",
		"authsession api": "",
	} {
		h, err := parseDirective(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := h.(*API).OpenAPI; got != want {
			t.Errorf("%q: openapi %q, want %q", in, got, want)
		}
	}
}

func TestHandlerDirectiveRejections(t *testing.T) {
	tests := []rejection{
		{"no kind", "authsession", "needs a kind: api, gate, portal or health"},
		{"unknown kind", "authsession pretzel", `"pretzel"`},
		{"unknown family", "authsession api pace", `"pace"`},
		{"family twice", "authsession api oam oam", `"oam" listed twice`},
		{"api block", "authsession api {\nfamilies oam\n}", `"families"`},
		{"openapi missing", "authsession api {\nopenapi\n}", "'openapi'"},
		{"openapi extra", "authsession api {\nopenapi /a /b\n}", "'/b'"},
		{"openapi relative", "authsession api {\nopenapi docs\n}", "must be a URL path starting with /"},
		{"openapi twice", "authsession api {\nopenapi /a\nopenapi /b\n}", "openapi given twice"},
		{"gate argument", "authsession gate strict {\n}", "'strict'"},
		{"gate unknown", "authsession gate {\nlogin_page /x\n}", `"login_page"`},
		{"login_url missing", "authsession gate {\nlogin_url\n}", "'login_url'"},
		{"login_url extra", "authsession gate {\nlogin_url /a /b\n}", "'/b'"},
		{"login_url twice", "authsession gate {\nlogin_url /a\nlogin_url /b\n}", "login_url given twice"},
		{"session_header missing", "authsession gate {\nsession_header\n}", "session_header needs <header> [<scheme>]"},
		{"session_header extra", "authsession gate {\nsession_header Authorization Bearer x\n}", "session_header needs"},
		{"session_header twice", "authsession gate {\nsession_header A\nsession_header B\n}", "session_header given twice"},
		{"upstream_header one arg", "authsession gate {\nupstream_header X-User\n}", "upstream_header needs <header> <field>"},
		{"upstream_header three args", "authsession gate {\nupstream_header X-User login group\n}", "upstream_header needs"},
		{"upstream_header bad field", "authsession gate {\nupstream_header X-User password\n}", `"password"`},
		{"upstream_header empty attr", "authsession gate {\nupstream_header X-User attr.\n}", `"attr."`},
		{"upstream_header twice", "authsession gate {\nupstream_header X-User login\nupstream_header x-user group\n}", "X-User given twice"},
		{"require_group missing", "authsession gate {\nrequire_group\n}", "'require_group'"},
		{"require_group twice", "authsession gate {\nrequire_group a\nrequire_group b\n}", "require_group given twice"},
		{"max_auth_age missing", "authsession gate {\nmax_auth_age\n}", "'max_auth_age'"},
		{"max_auth_age bad", "authsession gate {\nmax_auth_age recent\n}", `"recent"`},
		{"max_auth_age zero", "authsession gate {\nmax_auth_age 0\n}", "max_auth_age must be positive"},
		{"max_auth_age twice", "authsession gate {\nmax_auth_age 1m\nmax_auth_age 2m\n}", "max_auth_age given twice"},
		{"require_factor missing", "authsession gate {\nrequire_factor\n}", "'require_factor'"},
		{"require_factor extra", "authsession gate {\nrequire_factor a b\n}", "'b'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseDirective(tt.input)
			assertRejected(t, err, tt.want)
		})
	}
}

func TestGateValidate(t *testing.T) {
	for name, g := range map[string]*Gate{
		"scheme without header": {SessionScheme: "Bearer"},
		"bad field":             {UpstreamHeaders: map[string]string{"X-A": "secret"}},
		"empty header name":     {UpstreamHeaders: map[string]string{"": "login"}},
		"bad login url":         {LoginURL: "http://[::1"},
	} {
		if err := g.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAPIValidate(t *testing.T) {
	for name, h := range map[string]*API{
		"unknown":          {Families: []string{"pace"}},
		"twice":            {Families: []string{"oam", "oam"}},
		"openapi relative": {OpenAPI: "openapi"},
		"openapi pattern":  {OpenAPI: "/openapi/{x}"},
	} {
		if err := h.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := (&API{Families: []string{"oam"}}).Validate(); err != nil {
		t.Errorf("oam: %v", err)
	}
}

func TestParseOTPBlock(t *testing.T) {
	d := caddyfile.NewTestDispenser(`authsession {
		users_file /etc/caddy/users.json
		otp {
			digits 8
			lifetime 10m
			max_attempts 3
			cooldown 1m
			sends_per_hour 4
			expose_otp off
			key {env.OTP_KEY}
			totp_issuer "Example Co"
			delivery_timeout 3s
			delivery_attempts 2
			log_delivery
			smtp {
				host smtp.example.com
				port 2525
				tls tls
				username u
				password {env.SMTP_PASSWORD}
				from "Login <login@example.com>"
				subject "Code {{.Code}}"
				body "Your code: {{.Code}}"
			}
			webhook https://sms.example.com/hook {env.HOOK_SECRET}
		}
	}`)
	a := new(App)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	o := a.OTP
	if a.UsersFile != "/etc/caddy/users.json" || o.Digits != 8 || o.MaxAttempts != 3 || o.SendsPerHour != 4 ||
		o.ExposeOTP == nil || *o.ExposeOTP || o.Key != "{env.OTP_KEY}" || o.TOTPIssuer != "Example Co" ||
		o.DeliveryAttempts != 2 || !o.LogDelivery || o.Webhook.URL != "https://sms.example.com/hook" ||
		o.SMTP.Port != 2525 || o.SMTP.TLS != "tls" || o.SMTP.From != "Login <login@example.com>" ||
		o.SMTP.Subject != "Code {{.Code}}" || o.SMTP.Password != "{env.SMTP_PASSWORD}" {
		t.Fatalf("parsed %+v smtp %+v", o, o.SMTP)
	}
}

func TestParseOTPRejections(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"otp {\ndigits six\n}", "positive integer"},
		{"otp {\ndigits 6\ndigits 6\n}", "given twice"},
		{"otp {\nexpose_otp maybe\n}", "on or off"},
		{"otp {\ncolour blue\n}", "unrecognized otp option"},
		{"otp {\nwebhook https://x\n}", "webhook needs"},
		{"otp {\nsmtp {\nhost h\n}\n}", "host and from"},
		{"otp {\nsmtp {\nhost h\nfrom a@b\ntls ssl\n}\n}", "none, starttls or tls"},
		{"otp {\nsmtp {\nhost h\nfrom a@b\nhue 1\n}\n}", "unrecognized smtp option"},
		{"otp {\nlifetime 0s\n}", "positive"},
		{"otp extra", "wrong argument count"},
	} {
		d := caddyfile.NewTestDispenser("authsession {\n" + tt.in + "\n}")
		err := new(App).UnmarshalCaddyfile(d)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestParseAuthnBlock(t *testing.T) {
	d := caddyfile.NewTestDispenser(`authsession {
		authn {
			client app-1 cd577fe2561ebff23505db0bb006300c7cdecbd46bc0e03c449afafaca2c25bf
			client app-2 {env.APP2_SECRET_HASH}
			accept_unknown_users
			default_factors ChallengeEmail ChallengeSMS
			max_ttl 10m
		}
	}`)
	a := new(App)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	c := a.Authn
	if len(c.Clients) != 2 || c.Clients[0].ClientID != "app-1" || c.Clients[1].SecretHash != "{env.APP2_SECRET_HASH}" ||
		!c.AcceptUnknownUsers || strings.Join(c.DefaultFactors, ",") != "ChallengeEmail,ChallengeSMS" ||
		time.Duration(c.MaxTTL) != 10*time.Minute {
		t.Fatalf("parsed %+v", c)
	}
}

func TestParseAuthnRejections(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"authn {\nclient only-id\n}", "client needs"},
		{"authn {\naccept_unknown_users\naccept_unknown_users\n}", "given twice"},
		{"authn {\ndefault_factors ChallengeCarrierPigeon\n}", "unknown factor"},
		{"authn {\ndefault_factors\n}", "wrong argument count"},
		{"authn {\ncolour blue\n}", "unrecognized authn option"},
		{"authn extra", "wrong argument count"},
	} {
		d := caddyfile.NewTestDispenser("authsession {\n" + tt.in + "\n}")
		err := new(App).UnmarshalCaddyfile(d)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.in, err, tt.want)
		}
	}
}
