package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

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
