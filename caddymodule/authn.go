package caddymodule

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/state"
)

// AuthnConfig configures the challenge flow API (POST/PUT /authn/v1). It
// uses the app's api_users for Basic auth, the users file, and the otp
// block's policy and delivery.
type AuthnConfig struct {
	// Clients are the integration clients whose clientId/clientSecret a
	// POST must carry. With none, every POST is refused. Default: none.
	Clients []AuthnClient `json:"clients,omitempty"`
	// AcceptUnknownUsers takes the caller's word for a user that is not in
	// the users file, offering DefaultFactors (its mail or phone is the
	// userId itself). Default: false (such users are "missing
	// registration").
	AcceptUnknownUsers bool `json:"accept_unknown_users,omitempty"`
	// DefaultFactors are the factors of unknown users. Default:
	// ChallengeEmail.
	DefaultFactors []string `json:"default_factors,omitempty"`
	// MaxTTL bounds a challenge's timeToLiveInSec. Default: 1h.
	MaxTTL caddy.Duration `json:"max_ttl,omitempty"`
}

// AuthnClient is one integration client.
type AuthnClient struct {
	// ClientID is the clientId it sends.
	ClientID string `json:"client_id"`
	// SecretHash is the bcrypt hash (as made by `caddy hash-password`) or
	// the hex SHA-256 of its clientSecret ({env.*} accepted).
	SecretHash string `json:"secret_hash"`
}

// authnRuntime is what the app builds from AuthnConfig.
type authnRuntime struct {
	clients *handlers.AuthnClients
	cfg     AuthnConfig
}

// provisionAuthn checks the challenge flow's configuration.
func (a *App) provisionAuthn(repl *caddy.Replacer) error {
	cfg := AuthnConfig{}
	if a.Authn != nil {
		cfg = *a.Authn
	}
	if len(cfg.DefaultFactors) == 0 {
		cfg.DefaultFactors = []string{state.FactorEmail}
	}
	for _, f := range cfg.DefaultFactors {
		if !slices.Contains(state.Factors, f) {
			return fmt.Errorf("authn default_factors: unknown factor %q (known: %s)", f, strings.Join(state.Factors, ", "))
		}
	}
	hashes := make(map[string]string, len(cfg.Clients))
	for i, c := range cfg.Clients {
		if c.ClientID == "" {
			return fmt.Errorf("authn clients[%d]: client_id is empty", i)
		}
		if _, dup := hashes[c.ClientID]; dup {
			return fmt.Errorf("authn: client %q configured twice", c.ClientID)
		}
		hashes[c.ClientID] = repl.ReplaceAll(c.SecretHash, "")
	}
	clients, err := handlers.NewAuthnClients(hashes)
	if err != nil {
		return fmt.Errorf("authn: %w", err)
	}
	if clients.Len() == 0 && a.Authn != nil {
		a.logger.Warn("no authn clients configured: the challenge flow family refuses every POST")
	}
	a.authn = &authnRuntime{clients: clients, cfg: cfg}
	return nil
}

// authnFamily returns the challenge flow handlers.
func (a *App) authnFamily() *handlers.Authn {
	h := &handlers.Authn{
		Env: a.env, Auth: a.basic, Clients: a.authn.clients, Users: a.otp.dirs,
		AcceptUnknownUsers: a.authn.cfg.AcceptUnknownUsers, DefaultFactors: a.authn.cfg.DefaultFactors,
		OTP: a.otp.policy, TOTP: a.otp.totp, Key: a.otp.key, MaxTTL: time.Duration(a.authn.cfg.MaxTTL),
		Passkeys: a.passkeys,
	}
	if a.otp.async != nil {
		h.Delivery = a.otp.async
		h.Channels = a.otpChannels
	}
	return h
}

// otpChannels reports whether the otp block's delivery serves channel:
// mail needs smtp, SMS the webhook; log_delivery serves both.
func (a *App) otpChannels(channel string) bool {
	switch otp := a.OTP; {
	case otp == nil:
		return false
	case otp.LogDelivery:
		return true
	case channel == delivery.ChannelEmail:
		return otp.SMTP != nil
	case channel == delivery.ChannelSMS:
		return otp.Webhook != nil
	}
	return false
}
