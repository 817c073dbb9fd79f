// Package caddymodule is the Caddy side of caddy-authsession, and the only
// package of the project that imports Caddy:
//
//   - the "authsession" app (app.go), which owns the session store, kept
//     across config reloads in a caddy.UsagePool, the API credentials, the
//     seal and OTP keys (keys.go) and the settings of each API family
//     (otp.go, authn.go, riskanalyzer.go);
//   - the store modules "authsession.stores.memory", ".file" and ".redis"
//     (store*.go) over state, state/filestore and state/redisstore;
//   - the HTTP handlers "authsession_api" (api.go), "authsession_gate"
//     (gate.go, with the {http.auth.user.*} placeholders and Caddy's error
//     path for refusals) and "authsession_portal" (portal.go);
//   - the Caddyfile: the global option and the "authsession" directive,
//     every parser in caddyfile.go;
//   - metrics (metrics.go) and the "caddy authsession" commands (command.go).
//
// The handlers themselves are plain net/http in package handlers; this
// package only configures and wires them. Its tests against real servers
// (caddytest, bin/caddy, redis-server, Chromium) are in the integration
// package below it.
package caddymodule
