package handlers

import (
	"context"

	"github.com/authsession/caddy-authsession/state"
)

// Event names. The Caddy module emits each as "authsession.<name>" through
// Caddy's events app and writes it to the audit log.
const (
	EventSessionCreated       = "session_created"
	EventSessionAuthenticated = "session_authenticated"
	EventSessionRevoked       = "session_revoked"
	EventSessionExpired       = "session_expired"
	EventChallengeBlocked     = "challenge_blocked"
	EventLoginFailed          = "login_failed"
	EventFactorEnrolled       = "factor_enrolled"
	EventFactorRemoved        = "factor_removed"
	EventDeviceTrusted        = "device_trusted"
)

// Reasons of EventSessionRevoked.
const (
	RevokedLogout      = "logout"
	RevokedAdmin       = "admin"
	RevokedAPI         = "api"
	RevokedMaxSessions = "max_sessions"
	RevokedBackchannel = "backchannel"
)

// Event is one security-relevant happening: a session made, authenticated,
// revoked or expired, a factor blocked, a failed login, a factor enrolled or
// removed, a device trusted. It never carries a secret: no session id, no
// code, no password; the session is named by its store key, which emitters
// show only as a short prefix (state.Key.Short).
type Event struct {
	// Name is one of the Event* constants.
	Name string
	// UserKey is the canonical user key (state.UserKey); Login the name
	// the user or caller gave, when there was one.
	UserKey string
	Login   string
	// Session is the store key of the session concerned, if any.
	Session state.Key
	// Family is the API family or part that saw it: "oam",
	// "risk-analyzer", "authn", "otp", "portal", "gate", "admin", or an
	// identity provider's family ("oidc").
	Family string
	// Factor is the factor concerned, when there is one (a state.Factor*
	// key, "password", "OIDC:<name>", ...).
	Factor string
	// Reason says why, for EventSessionRevoked (Revoked*) and
	// EventLoginFailed.
	Reason string
	// ClientIP is the client's address as the handler saw it.
	ClientIP string
}

// Emitter receives events. Emit must not block on the request path for
// long and must be safe for concurrent use.
type Emitter interface {
	Emit(ctx context.Context, ev Event)
}

// Emit hands ev to the env's Events emitter, if there is one.
func (e *Env) Emit(ctx context.Context, ev Event) {
	if e != nil && e.Events != nil {
		e.Events.Emit(ctx, ev)
	}
}
