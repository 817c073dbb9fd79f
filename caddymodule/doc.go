// Package caddymodule is the Caddy glue of caddy-authsession: the
// "authsession" app that owns the session store (kept across config
// reloads in a caddy.UsagePool), the HTTP handlers "authsession_api" and
// "authsession_gate", their Caddyfile syntax, placeholders, logging and
// metrics. It is the only package of the project that imports Caddy.
package caddymodule
