package caddymodule

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/state"
)

// OTPConfig configures one-time codes (mail, webhook), TOTP and the OTP
// session API family.
type OTPConfig struct {
	// Digits is the length of a code. Default: 6.
	Digits int `json:"digits,omitempty"`
	// Lifetime is how long a code may be used. Default: 5m.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`
	// MaxAttempts is the number of wrong answers after which the session
	// is "challenge blocked" for the app's block_duration. Default: 5.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Cooldown is the least time between two codes for one session.
	// Default: 30s.
	Cooldown caddy.Duration `json:"cooldown,omitempty"`
	// SendsPerHour bounds the codes sent to one user in an hour.
	// Default: 10.
	SendsPerHour int `json:"sends_per_hour,omitempty"`
	// ExposeOTP returns the code in the answers of PUT /sessions/{id} and
	// POST /user/otp, as the vendor's API does for its trusted backends.
	// Default: true.
	ExposeOTP *bool `json:"expose_otp,omitempty"`
	// Key is the base64 32-byte key of the codes' keyed hashes
	// ({env.*} accepted). Instances sharing a store must share it.
	// Default: a key generated once and kept in Caddy's data directory
	// (authsession/otp.key).
	Key string `json:"key,omitempty"`
	// TOTPIssuer names the service in authenticator apps. Default:
	// authsession.
	TOTPIssuer string `json:"totp_issuer,omitempty"`
	// DeliveryTimeout is the longest a request waits for a delivery.
	// Default: 5s.
	DeliveryTimeout caddy.Duration `json:"delivery_timeout,omitempty"`
	// DeliveryAttempts is the number of tries per delivery. Default: 3.
	DeliveryAttempts int `json:"delivery_attempts,omitempty"`
	// SMTP mails codes. Default: none.
	SMTP *SMTPConfig `json:"smtp,omitempty"`
	// Webhook POSTs codes for the SMS channel. Default: none.
	Webhook *WebhookConfig `json:"webhook,omitempty"`
	// LogDelivery writes codes to Caddy's log instead of sending them
	// (UNSAFE, development only) for every channel with no other delivery.
	// Default: false.
	LogDelivery bool `json:"log_delivery,omitempty"`
}

// SMTPConfig configures the mail delivery.
type SMTPConfig struct {
	// Host of the mail server. Required.
	Host string `json:"host"`
	// Port of the mail server. Default: 587 (starttls), 465 (tls), 25 (none).
	Port int `json:"port,omitempty"`
	// TLS is none, starttls or tls. Default: starttls.
	TLS string `json:"tls,omitempty"`
	// Username enables SMTP authentication ({env.*} accepted). Default: none.
	Username string `json:"username,omitempty"`
	// Password of Username ({env.*} advised). Default: none.
	Password string `json:"password,omitempty"`
	// From is the sender address. Required.
	From string `json:"from"`
	// Subject is a text/template with .Code, .ExpiresAt and .Login.
	// Default: "Your one-time code".
	Subject string `json:"subject,omitempty"`
	// Body is a text/template with .Code, .ExpiresAt and .Login.
	// Default: a short text giving the code and its expiry.
	Body string `json:"body,omitempty"`
}

// WebhookConfig configures the webhook delivery.
type WebhookConfig struct {
	// URL receives a signed JSON POST per code ({env.*} accepted). Required.
	URL string `json:"url"`
	// Secret keys the X-Authsession-Signature header ({env.*} advised).
	// Required.
	Secret string `json:"secret"`
}

// otpRuntime is what the app builds from OTPConfig and the users file.
type otpRuntime struct {
	users *state.Users
	// dirs are the identity stores in lookup order (the users file, when
	// there is one); nil when there is none.
	dirs   state.Directory
	policy state.OTPPolicy
	totp   state.TOTPPolicy
	key    []byte
	async  *delivery.Async
	expose bool
}

// provisionOTP loads the users file and builds the OTP policy and delivery.
func (a *App) provisionOTP(repl *caddy.Replacer) error {
	cfg := a.OTP
	if cfg == nil {
		cfg = new(OTPConfig)
	}
	rt := &otpRuntime{expose: cfg.ExposeOTP == nil || *cfg.ExposeOTP}
	if a.bearer.Empty() {
		a.logger.Warn("no api_tokens configured: the OTP session family refuses every call")
	}
	if a.UsersFile != "" {
		users, err := state.LoadUsers(repl.ReplaceAll(a.UsersFile, ""), false)
		if err != nil {
			return fmt.Errorf("users_file: %w", err)
		}
		rt.users = users
		rt.dirs = state.Directories{users.Directory(a.IDStoreName)}
		a.logger.Info("users file loaded", zap.String("file", users.Path()), zap.Int("users", users.Len()))
	}
	rt.policy = state.OTPPolicy{
		Digits: cfg.Digits, Lifetime: time.Duration(cfg.Lifetime), MaxAttempts: cfg.MaxAttempts,
		BlockFor: time.Duration(a.BlockDuration), Cooldown: time.Duration(cfg.Cooldown), SendsPerHour: cfg.SendsPerHour,
	}.Defaults()
	if err := rt.policy.Validate(); err != nil {
		return err
	}
	rt.totp = state.TOTPPolicy{Issuer: cfg.TOTPIssuer}.Defaults()
	key, err := a.loadOrCreateKey(repl, cfg.Key, "otp key", "otp.key")
	if err != nil {
		return err
	}
	rt.key = key

	var router delivery.Router
	if cfg.SMTP != nil {
		s := cfg.SMTP
		d, err := delivery.NewSMTPDeliverer(delivery.SMTPConfig{
			Host: repl.ReplaceAll(s.Host, ""), Port: s.Port, TLS: s.TLS,
			Username: repl.ReplaceAll(s.Username, ""), Password: repl.ReplaceAll(s.Password, ""),
			From: s.From, Subject: s.Subject, Body: s.Body,
		})
		if err != nil {
			return err
		}
		router.Email = d
	}
	if cfg.Webhook != nil {
		d, err := delivery.NewWebhookDeliverer(delivery.WebhookConfig{
			URL: repl.ReplaceAll(cfg.Webhook.URL, ""), Secret: repl.ReplaceAll(cfg.Webhook.Secret, ""),
		})
		if err != nil {
			return err
		}
		router.SMS = d
	}
	if cfg.LogDelivery {
		a.logger.Warn("log_delivery is on: one-time codes are written to the log (UNSAFE, development only)")
		dev := delivery.LogDeliverer{Logger: a.logger.Named("otp_delivery")}
		if router.Email == nil {
			router.Email = dev
		}
		if router.SMS == nil {
			router.SMS = dev
		}
	}
	if router.Email != nil || router.SMS != nil {
		rt.async = delivery.NewAsync(router, delivery.AsyncOptions{
			Attempts: cfg.DeliveryAttempts, Wait: time.Duration(cfg.DeliveryTimeout),
		}, a.logger)
	} else {
		a.logger.Warn("no otp delivery configured (smtp, webhook or log_delivery): codes are not sent")
	}
	a.otp = rt
	return nil
}

// cleanupOTP stops pending deliveries.
func (a *App) cleanupOTP() {
	if a.otp != nil && a.otp.async != nil {
		_ = a.otp.async.Close()
	}
}

// otpFamily returns the OTP session family handlers.
func (a *App) otpFamily() *handlers.OTPSessions {
	o := &handlers.OTPSessions{
		Env: a.env, Auth: a.bearer, Users: a.otp.dirs, OTP: a.otp.policy, TOTP: a.otp.totp,
		Key: a.otp.key, ExposeOTP: a.otp.expose, CookieName: a.Cookie.Name,
	}
	if a.otp.async != nil {
		o.Delivery = a.otp.async
	}
	return o
}
