// Package state holds the session model of caddy-authsession: the Session
// record and its status state machine, session ids and their keys, sealed
// ids, one-time codes (OTP) and authenticator-app codes (TOTP), the users
// file, per-user state with trusted devices, and the Store interface with
// its default implementation, the in-process Memory store.
//
// The durable stores live in packages of their own, which import this one:
// state/filestore (a bbolt file on one instance) and state/redisstore
// (Redis, shared by several instances). This package imports neither, and
// knows nothing of HTTP or Caddy, so every rule here is testable with plain
// Go tests and an injected clock.
package state
