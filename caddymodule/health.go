package caddymodule

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authsession/caddy-authsession/state"
)

func init() {
	caddy.RegisterModule(Health{})
}

// Health answers a load balancer's probe: 200 with {"status":"up"} when the
// app's session store can be reached, 503 with {"status":"down"} when it
// cannot (the reason goes to the log, not to the probe). Each probe makes
// one round trip to a network store (Redis PING); memory and file stores
// are always up. It answers every request it is given: put it on its own
// path, before the gate.
type Health struct {
	// Timeout bounds the store check. Default: 1s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	app    *App
	logger *zap.Logger
}

// DefaultHealthTimeout bounds a probe's store check when no timeout is set.
const DefaultHealthTimeout = time.Second

// CaddyModule returns the Caddy module information.
func (Health) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.authsession_health",
		New: func() caddy.Module { return new(Health) },
	}
}

// Provision finds the app.
func (h *Health) Provision(ctx caddy.Context) error {
	app, err := appFrom(ctx)
	if err != nil {
		return err
	}
	h.app, h.logger = app, ctx.Logger()
	if h.Timeout <= 0 {
		h.Timeout = caddy.Duration(DefaultHealthTimeout)
	}
	return nil
}

// healthBody is the probe's answer.
type healthBody struct {
	Status string `json:"status"`
	Store  string `json:"store"`
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; it never calls next.
func (h *Health) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(h.Timeout))
	defer cancel()
	body := healthBody{Status: "up", Store: h.app.storeModule()}
	status := http.StatusOK
	if err := state.Ping(ctx, h.app.store); err != nil {
		body.Status, status = "down", http.StatusServiceUnavailable
		h.logger.Warn("health check: session store unreachable", zap.Error(err))
	}
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return nil
	}
	return writeJSON(w, status, body)
}

// UnmarshalCaddyfile sets up the handler; the dispenser is positioned on
// "health".
//
// Syntax:
//
//	authsession [<matcher>] health {
//	    [timeout <duration>]
//	}
func (h *Health) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "timeout":
			if err := parseDurationInto(d, &h.Timeout); err != nil {
				return err
			}
		default:
			return d.Errf("unknown authsession health option %q (known: timeout)", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Health)(nil)
	_ caddyhttp.MiddlewareHandler = (*Health)(nil)
	_ caddyfile.Unmarshaler       = (*Health)(nil)
)
