package handlers

import (
	"context"
	"net"
	"net/http"

	"github.com/authsession/caddy-authsession/state"
)

// familyCtxKey carries the family creating a session into CreateSession,
// for the events of its creation and of the trims it makes.
type familyCtxKey struct{}

// withFamily returns ctx naming family as the one at work.
func withFamily(ctx context.Context, family string) context.Context {
	return context.WithValue(ctx, familyCtxKey{}, family)
}

// rotationCtxKey marks a creation that replaces a session of the same
// sign-in under a new id.
type rotationCtxKey struct{}

// WithRotation returns ctx saying that the session CreateSession stores
// replaces another of the same sign-in under a new id (the portal's id
// rotation): its creation emits session_authenticated when it is, but no
// second session_created.
func WithRotation(ctx context.Context) context.Context {
	return context.WithValue(ctx, rotationCtxKey{}, true)
}

// familyOf returns the family ctx names, or "".
func familyOf(ctx context.Context) string {
	f, _ := ctx.Value(familyCtxKey{}).(string)
	return f
}

// CreateSessionIn is CreateSession for family: it emits session_created
// (and session_authenticated when s starts authenticated, as an OAM session
// without a required second factor does), and session_revoked with reason
// max_sessions for each session the per-user maximum removes.
func (e *Env) CreateSessionIn(ctx context.Context, family string, s *state.Session) error {
	return e.CreateSession(withFamily(ctx, family), s)
}

// emitCreated emits the events of s's creation.
func (e *Env) emitCreated(ctx context.Context, s *state.Session) {
	if e == nil || e.Events == nil {
		return
	}
	ev := sessionEvent(EventSessionCreated, s, familyOf(ctx), s.ClientIP)
	if rotated, _ := ctx.Value(rotationCtxKey{}).(bool); !rotated {
		e.Emit(ctx, ev)
	}
	if s.Status == state.StatusAuthenticated {
		ev.Name, ev.Factor = EventSessionAuthenticated, lastFactor(s)
		e.Emit(ctx, ev)
	}
}

// emitTrimmed emits the revocation of o by the per-user maximum.
func (e *Env) emitTrimmed(ctx context.Context, o *state.Session) {
	if e == nil || e.Events == nil {
		return
	}
	ev := sessionEvent(EventSessionRevoked, o, familyOf(ctx), o.ClientIP)
	ev.Reason = RevokedMaxSessions
	e.Emit(ctx, ev)
}

// UpdateSession is Store.Update on key for family, emitting the events of
// the status change fn made: session_authenticated when the session became
// authenticated, challenge_blocked when it became blocked. clientIP is the
// caller's address ("" for the session's own).
func (e *Env) UpdateSession(ctx context.Context, family, clientIP string, key state.Key, fn func(*state.Session) error) (*state.Session, error) {
	var from state.Status
	s, err := e.Store.Update(ctx, key, func(s *state.Session) error {
		from = s.EffectiveStatus(e.Now())
		return fn(s)
	})
	if err != nil || e.Events == nil {
		return s, err
	}
	if clientIP == "" {
		clientIP = s.ClientIP
	}
	to := s.EffectiveStatus(e.Now())
	if to == from {
		return s, nil
	}
	switch to {
	case state.StatusAuthenticated:
		ev := sessionEvent(EventSessionAuthenticated, s, family, clientIP)
		ev.Factor = lastFactor(s)
		e.Emit(ctx, ev)
	case state.StatusChallengeBlocked:
		ev := sessionEvent(EventChallengeBlocked, s, family, clientIP)
		if s.Challenge != nil {
			ev.Factor = s.Challenge.Factor
		}
		ev.Reason = s.StatusReason
		e.Emit(ctx, ev)
	default: // the other changes are no security events
	}
	return s, nil
}

// DeleteSession is Store.Delete on key, emitting session_revoked with
// reason (a Revoked* constant) for family when a session was deleted.
func (e *Env) DeleteSession(ctx context.Context, family, reason, clientIP string, key state.Key) (*state.Session, error) {
	s, err := e.Store.Delete(ctx, key)
	if err != nil || e.Events == nil {
		return s, err
	}
	if clientIP == "" {
		clientIP = s.ClientIP
	}
	ev := sessionEvent(EventSessionRevoked, s, family, clientIP)
	ev.Reason = reason
	e.Emit(ctx, ev)
	return s, nil
}

// EmitLoginFailed emits login_failed: a wrong password or code at the
// portal (factor "password" or the code's factor), or wrong API
// credentials (factor "api_credentials", login the API user given).
func (e *Env) EmitLoginFailed(ctx context.Context, family, factor, reason, userKey, login, clientIP string) {
	e.Emit(ctx, Event{
		Name: EventLoginFailed, Family: family, Factor: factor, Reason: reason,
		UserKey: userKey, Login: login, ClientIP: clientIP,
	})
}

// apiCredentialsFailed emits login_failed for a request of family whose
// Basic credentials auth refused (wrong, or throttled); a request with
// none is no login attempt. The event names the API user only when auth
// knows that name (an unknown one may be a secret typed in the wrong
// field): the reason then says unknown_user.
func (e *Env) apiCredentialsFailed(r *http.Request, family string, auth *BasicAuth, res AuthResult) {
	if e == nil || e.Events == nil || res == AuthOK {
		return
	}
	user, _, ok := r.BasicAuth()
	if !ok {
		return
	}
	reason := "wrong_credentials"
	if res == AuthThrottled {
		reason = "throttled"
	}
	if !auth.known(user) {
		user = ""
		if res != AuthThrottled {
			reason = "unknown_user"
		}
	}
	e.EmitLoginFailed(r.Context(), family, FactorAPICredentials, reason, "", user, RemoteIP(r))
}

// known reports whether user is a configured API user.
func (b *BasicAuth) known(user string) bool {
	if b == nil {
		return false
	}
	_, ok := b.users[user]
	return ok
}

// FactorAPICredentials is the factor of login_failed events for refused
// API Basic credentials.
const FactorAPICredentials = "api_credentials"

// RemoteIP returns the host of r.RemoteAddr.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func sessionEvent(name string, s *state.Session, family, clientIP string) Event {
	return Event{
		Name: name, UserKey: s.UserID, Login: s.LoginName, Session: s.Key,
		Family: family, ClientIP: clientIP,
	}
}

func lastFactor(s *state.Session) string {
	if len(s.Factors) == 0 {
		return ""
	}
	return s.Factors[len(s.Factors)-1]
}
