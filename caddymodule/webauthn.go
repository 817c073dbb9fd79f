package caddymodule

import (
	"net/url"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/authsession/caddy-authsession/handlers"
)

// WebAuthnConfig turns passkeys on: the challenge flow verifies
// ChallengeFIDO2 itself for the users with passkeys registered here.
type WebAuthnConfig struct {
	// RPID is the relying party id, the site's host or a registrable
	// suffix of it. Default: the host of the first origin.
	RPID string `json:"rp_id,omitempty"`
	// RPName is the name the browser shows when a passkey is made.
	// Default: the RP id.
	RPName string `json:"rp_name,omitempty"`
	// Origins are the origins the sign-in pages are served on
	// (https://host[:port]; http only on localhost). Default:
	// https://<rp_id>.
	Origins []string `json:"origins,omitempty"`
	// UserVerification is required or preferred (default).
	UserVerification string `json:"user_verification,omitempty"`
	// Passwordless lets a discoverable passkey be the whole sign-in.
	Passwordless bool `json:"passwordless,omitempty"`
}

// passkeyConfig fills the defaults and returns the handlers' config.
func (c *WebAuthnConfig) passkeyConfig() handlers.PasskeyConfig {
	pc := handlers.PasskeyConfig{
		RPID: c.RPID, RPName: c.RPName, Origins: c.Origins,
		UserVerification: c.UserVerification, Passwordless: c.Passwordless,
	}
	if pc.RPID == "" && len(pc.Origins) > 0 {
		if u, err := url.Parse(pc.Origins[0]); err == nil {
			pc.RPID = u.Hostname()
		}
	}
	if len(pc.Origins) == 0 && pc.RPID != "" {
		pc.Origins = []string{"https://" + pc.RPID}
	}
	return pc
}

// provisionWebAuthn checks the webauthn block and builds the relying
// party; errors say what a browser would refuse.
func (a *App) provisionWebAuthn() error {
	if a.WebAuthn == nil {
		return nil
	}
	p, err := handlers.NewPasskeys(a.WebAuthn.passkeyConfig())
	if err != nil {
		return err
	}
	a.passkeys = p
	return nil
}

// parseWebAuthn reads the webauthn block of the global option.
//
// Syntax:
//
//	webauthn {
//	    [rp_id <domain>]
//	    [rp_name <name>]
//	    [origins <origin...>]
//	    [user_verification required|preferred]
//	    [passwordless on|off]
//	}
func (a *App) parseWebAuthn(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	c := new(WebAuthnConfig)
	if err := eachOption(d, "webauthn", nil, func(opt string) error {
		var err error
		switch opt {
		case "rp_id":
			c.RPID, err = oneArg(d)
		case "rp_name":
			c.RPName, err = oneArg(d)
		case "origins":
			c.Origins = d.RemainingArgs()
			if len(c.Origins) == 0 {
				return d.ArgErr()
			}
		case "user_verification":
			c.UserVerification, err = oneArg(d)
			if err == nil && c.UserVerification != "required" && c.UserVerification != "preferred" {
				return d.Errf("user_verification must be required or preferred")
			}
		case "passwordless":
			var v string
			if v, err = oneArg(d); err != nil {
				return err
			}
			switch v {
			case "on":
				c.Passwordless = true
			case "off":
				c.Passwordless = false
			default:
				return d.Errf("passwordless must be on or off")
			}
		default:
			return d.Errf("unrecognized webauthn option %q", opt)
		}
		return err
	}); err != nil {
		return err
	}
	if _, err := handlers.NewPasskeys(c.passkeyConfig()); err != nil {
		return d.Err(err.Error())
	}
	a.WebAuthn = c
	return nil
}
