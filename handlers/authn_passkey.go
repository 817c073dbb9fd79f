package handlers

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
)

// Keys of the challengeAttrMap of ChallengeFIDO2 for a user with passkeys
// registered here.
const (
	// passkeyAttrOptions carries the PublicKeyCredentialRequestOptions
	// (WebAuthn JSON, base64url members) in the answer to Init.
	passkeyAttrOptions = "publicKeyCredentialRequestOptions" //nolint:gosec // a key name, no secret
	// passkeyAttrRPID is the relying party id (POST and Init).
	passkeyAttrRPID = "rpId"
)

// passkeyCount returns how many passkeys the user id has registered here;
// 0 when passkeys are off. A store that cannot answer is an error, never
// "none": a user with passkeys here would otherwise have ChallengeFIDO2
// taken as an external factor, which the caller may finalize with Success
// unchecked.
func (a *Authn) passkeyCount(ctx context.Context, id string) (int, error) {
	if a.Passkeys == nil || id == "" {
		return 0, nil
	}
	u, err := a.Env.Store.GetUser(ctx, UserKey(ctx, a.Users, id))
	switch {
	case errors.Is(err, state.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	}
	return len(u.Passkeys), nil
}

// passiveFor reports whether factor f is checked here by Validate for a
// user with local passkeys or not: the code factors always, FIDO2 when the
// user has passkeys registered here.
func passiveFor(f string, localFIDO2 bool) bool {
	return passive(f) || (f == state.FactorFIDO2 && localFIDO2)
}

// passkeyCeremonyID is the id of the assertion ceremony of the
// challenge under session key: one per challenge, a new Init replaces it.
func passkeyCeremonyID(key state.Key) string {
	return "authn." + key.Short()
}

// beginPasskey starts the assertion ceremony of an Init of ChallengeFIDO2
// for the user under ukey, bound to the correlationId, and returns the
// request options.
func (a *Authn) beginPasskey(ctx context.Context, key state.Key, cid, ukey, login string, now time.Time) ([]byte, error) {
	var opts []byte
	_, err := a.Env.Store.UpdateUser(ctx, ukey, func(u *state.UserState) error {
		o, c, err := a.Passkeys.BeginLogin(ukey, login, u, CeremonyBinding(cid))
		if err != nil {
			return err
		}
		opts = o
		u.StartCeremony(passkeyCeremonyID(key), c, now)
		return nil
	})
	return opts, err
}

// checkPasskey counts the answer of a Validate of ChallengeFIDO2 against
// the user's factor and verifies it (see Passkeys.FinishLogin), in one
// update of the user's state: the ceremony is spent whatever the outcome.
// It returns whether the assertion verified, why not, and last as
// ReserveAttempt does; err is a store error or a *state.BlockedError.
func (a *Authn) checkPasskey(ctx context.Context, key state.Key, cid, ukey string, answer []byte, now time.Time) (ok bool, why error, last bool, err error) {
	pa, perr := ParseAssertion(answer)
	_, err = a.Env.Store.UpdateUser(ctx, ukey, func(u *state.UserState) error {
		ok, why, last = false, nil, false
		var err error
		if last, err = a.OTP.ReserveAttempt(u, state.FactorFIDO2, now); err != nil {
			return err
		}
		if perr != nil {
			why = perr
			return nil
		}
		if _, why = a.Passkeys.FinishLogin(ukey, u, passkeyCeremonyID(key), CeremonyBinding(cid), pa, now); why == nil {
			ok = true
			u.ClearAttempts(state.FactorFIDO2)
		}
		return nil
	})
	return ok, why, last, err
}

// localFIDO2 reports whether the PUT is about ChallengeFIDO2 for a user
// with passkeys registered here; err is a store that could not tell.
func (a *Authn) localFIDO2(ctx context.Context, s *state.Session, in *updateAuthnRequest, op string) (bool, error) {
	if a.Passkeys == nil {
		return false, nil
	}
	factor := ""
	if s.Challenge != nil {
		factor = s.Challenge.Factor
	}
	if op == opInit {
		factor = ""
		if in.ChallengeData != nil {
			factor = string(in.ChallengeData.Factor)
		}
	}
	if factor != state.FactorFIDO2 {
		return false, nil
	}
	n, err := a.passkeyCount(ctx, a.userOf(s, in))
	return n > 0, err
}

// passkeyInitContext is the initContext of the answer to an Init of
// ChallengeFIDO2: the request options to hand to
// navigator.credentials.get (as its publicKey member).
func (a *Authn) passkeyInitContext(opts []byte) *authnInitContext {
	return &authnInitContext{
		ChallengeInfo: []authnChallengeInfo{{
			Factor: state.FactorFIDO2,
			FactorContext: authnFactorContext{
				ChallengeAttrMap: []authnAttr{
					{Key: passkeyAttrOptions, Value: authnAttrValue{Value: string(opts)}},
					{Key: passkeyAttrRPID, Value: authnAttrValue{Value: a.Passkeys.Config.RPID}},
				},
				Prompts: []authnKeyValue{{Key: "fido2", Value: "passkey"}},
			},
		}},
		Cookies: []authnKeyValue{}, FactorAttributes: []authnKeyValue{}, RequestParams: []authnKeyValue{},
	}
}

// passkeyRefused logs and emits a refused passkey answer. A counter that
// went back (a cloned authenticator) is logged as a warning.
func (a *Authn) passkeyRefused(r interface{ Context() context.Context }, log *zap.Logger, s *state.Session, ukey string, why error, blocked bool) {
	reason := "wrong_answer"
	switch {
	case errors.Is(why, state.ErrSignCount):
		reason = "cloned_authenticator"
		log.Warn("passkey refused: its signature counter went back (cloned authenticator?)")
	case errors.Is(why, state.ErrNoCeremony):
		reason = "stale_challenge"
		log.Info("passkey refused: no live challenge (replayed, expired or another challenge's)")
	case why != nil:
		log.Info("passkey refused", zap.String("why", why.Error()))
	case blocked:
		reason = state.ReasonTooManyAttempts
	}
	a.Env.Emit(r.Context(), Event{
		Name: EventLoginFailed, UserKey: ukey, Login: s.LoginName, Session: s.Key,
		Family: "authn", Factor: state.FactorFIDO2, Reason: reason, ClientIP: s.ClientIP,
	})
}
