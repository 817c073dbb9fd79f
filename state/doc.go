// Package state holds the session model of caddy-authsession: the Session
// record, its status state machine, session ids, and the stores that keep
// sessions (memory by default). It knows nothing of HTTP or Caddy, so every
// rule here is testable with plain Go tests and an injected clock.
package state
