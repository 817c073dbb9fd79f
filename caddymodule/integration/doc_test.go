// Package integration holds caddy-authsession's tests against real servers:
// the in-process Caddy of caddytest (one per test binary, so they live in
// this one package), bin/caddy child processes, redis-server and headless
// Chromium. The unit tests of the Caddy module stay in package caddymodule.
package integration

import (
	// The module under test registers itself with Caddy.
	_ "github.com/authsession/caddy-authsession/caddymodule"
)
