package handlers

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/state"
)

// Operations of PUT /authn/v1.
const (
	opInit     = "Init"
	opValidate = "Validate"
	opFinalize = "Finalize"
)

// authnRefusal is a PUT refused with 400 (it counts as an attempt), or,
// with fault set, one the identity store could not answer (503, nothing
// counted).
type authnRefusal struct {
	code, msg string
	fault     error
}

// faultRefusal is the refusal of a request whose user the identity store
// could not look up.
func faultRefusal(err error) *authnRefusal {
	return &authnRefusal{code: authnCodeStore, msg: "identity store unavailable", fault: directoryFault(err)}
}

// passive reports whether factor f is checked here by Validate.
func passive(f string) bool {
	return f == state.FactorEmail || f == state.FactorSMS || f == state.FactorTOTP
}

// putOutcome is what one run of the update function decided.
type putOutcome struct {
	refusal   *authnRefusal
	blocked   bool
	wrong     bool
	nonce     string
	prevNonce []byte
	code      string
	codeExp   time.Time
	retry     *state.RetryError
	user      authnUser
}

// put runs Init, Validate or Finalize: PUT /authn/v1.
func (a *Authn) put(w http.ResponseWriter, r *http.Request) {
	var in updateAuthnRequest
	outXML, ok := a.readRequest(w, r, "UpdateAuthnRequest", &in)
	if !ok {
		return
	}
	cid := string(in.CorrelationID)
	key, ok := correlationKey(cid)
	if !ok {
		a.fail(w, outXML, http.StatusBadRequest, authnCodeUnknownCID, "unknown correlationId", "")
		return
	}
	ctx, cancel := a.Env.StoreContext(r)
	defer cancel()
	now := a.Env.Time()
	cur, err := a.Env.Store.Get(ctx, key)
	if errors.Is(err, state.ErrNotFound) {
		a.fail(w, outXML, http.StatusBadRequest, authnCodeUnknownCID, "unknown correlationId", "")
		return
	} else if err != nil {
		a.storeFail(w, outXML, "get", err)
		return
	}
	// The user's identity store is asked first, and its answers kept for
	// the request: one that cannot answer gets a 503, nothing counted.
	ctx = WithDirectoryMemo(ctx)
	var named string
	if in.ChallengeData != nil {
		named = strings.TrimSpace(string(in.ChallengeData.UserID))
	}
	if err := preflightUsers(ctx, a.Users, cur.UserID, named); err != nil {
		a.storeFail(w, outXML, "user", err)
		return
	}
	op := canonicalOp(string(in.ChallengeOp))

	// Work that cannot run inside Update (it touches the user's record):
	// the hourly send limit before a code is made, the TOTP check with its
	// replay guard. Both only when the snapshot says the request is sound.
	var answerOK, lastAttempt bool // answerOK: a TOTP code or passkey checked here
	var ukey, counted string       // the user and factor an answer was counted on
	var userBlock time.Time        // the end of the block of the user's factor
	var passkeyOptions []byte      // the request options made by an Init of FIDO2
	var passkeyWhy error           // why a passkey's answer was refused
	localFIDO2, err := a.localFIDO2(ctx, cur, &in, op)
	if err != nil {
		a.storeFail(w, outXML, "passkeys", err)
		return
	}
	if pre := a.check(ctx, cur, &in, op, cid, now, localFIDO2); pre == nil && cur.EffectiveStatus(now) != state.StatusChallengeBlocked {
		factor := cur.Challenge.Factor
		if op == opInit {
			factor = string(in.ChallengeData.Factor)
		}
		user, err := a.resolveUser(ctx, a.userOf(cur, &in), cur.GroupName)
		if err != nil {
			a.storeFail(w, outXML, "user", err)
			return
		}
		if op == opInit && passiveFor(factor, localFIDO2) && slices.Contains(user.factors, factor) {
			// A factor blocked for the user (one whose answers are
			// checked and counted here) is refused before a code is made
			// or sent or a passkey ceremony begun, and nothing is written:
			// its Validate would be refused anyway.
			until, err := FactorBlock(ctx, a.Env.Store, UserKey(ctx, a.Users, user.id), factor, now)
			if err != nil {
				a.storeFail(w, outXML, "attempts", err)
				return
			}
			if !until.IsZero() {
				a.blockedInit(w, outXML, key, until, now)
				return
			}
		}
		switch {
		case op == opInit && factor == state.FactorFIDO2 && localFIDO2 && slices.Contains(user.factors, factor):
			var err error
			if passkeyOptions, err = a.beginPasskey(ctx, key, cid, UserKey(ctx, a.Users, user.id), user.login, now); err != nil {
				a.storeFail(w, outXML, "passkey options", err)
				return
			}
		case op == opValidate && factor == state.FactorFIDO2 && localFIDO2 && in.ChallengeAnswer != nil && *in.ChallengeAnswer != "":
			ukey, counted = UserKey(ctx, a.Users, user.id), factor
			var err error
			answerOK, passkeyWhy, lastAttempt, err = a.checkPasskey(ctx, key, cid, ukey, []byte(*in.ChallengeAnswer), now)
			if be, ok := errors.AsType[*state.BlockedError](err); ok {
				userBlock = be.Until
			} else if err != nil {
				a.storeFail(w, outXML, "passkey", err)
				return
			}
		case op == opInit && (factor == state.FactorEmail || factor == state.FactorSMS) &&
			slices.Contains(user.factors, factor) && !a.inCooldown(cur, now):
			if _, err := a.Env.Store.UpdateUser(ctx, UserKey(ctx, a.Users, user.id), func(u *state.UserState) error {
				if until, blocked := u.FactorBlocked(factor, now); blocked {
					return &state.BlockedError{Until: until} // blocked meanwhile
				}
				return a.OTP.AllowSend(u, now)
			}); err != nil {
				if be, ok := errors.AsType[*state.BlockedError](err); ok {
					a.blockedInit(w, outXML, key, be.Until, now)
					return
				}
				if re, ok := errors.AsType[*state.RetryError](err); ok {
					w.Header().Set("Retry-After", RetryAfter(re.After, now))
					a.fail(w, outXML, http.StatusTooManyRequests, authnCodeRetry, re.Err.Error(), "")
					return
				}
				a.storeFail(w, outXML, "send limit", err)
				return
			}
		case op == opValidate && passive(factor) && in.ChallengeAnswer != nil && *in.ChallengeAnswer != "":
			// The answer is counted against the user's factor before it
			// is checked (see ReserveAttempt); a TOTP answer is counted
			// and checked in one step.
			ukey, counted = UserKey(ctx, a.Users, user.id), factor
			var err error
			if factor == state.FactorTOTP && user.totpSecret != "" {
				answer := string(*in.ChallengeAnswer)
				_, err = a.Env.Store.UpdateUser(ctx, ukey, func(u *state.UserState) error {
					answerOK = false
					var err error
					if lastAttempt, err = a.OTP.ReserveAttempt(u, factor, now); err != nil {
						return err
					}
					res, err := a.TOTP.Check(u, user.totpSecret, answer, now)
					if err != nil {
						return err
					}
					if answerOK = res == state.TOTPOK; answerOK {
						u.ClearAttempts(factor)
					}
					return nil
				})
			} else {
				lastAttempt, err = ReserveAttempt(ctx, a.Env.Store, a.OTP, ukey, now, factor)
			}
			if be, ok := errors.AsType[*state.BlockedError](err); ok {
				userBlock = be.Until
			} else if err != nil {
				a.storeFail(w, outXML, "attempts", err)
				return
			}
		}
	}

	var out putOutcome
	var kept *state.Session // the private copy of a session left unwritten
	s, err := a.Env.UpdateSession(ctx, "authn", "", key, func(s *state.Session) error {
		out, kept = putOutcome{}, nil
		if !userBlock.IsZero() {
			BlockSession(s, now, userBlock)
			out.blocked = true
			return nil
		}
		if s.EffectiveStatus(now) == state.StatusChallengeBlocked {
			// Refused as it stands: nothing to write.
			out.blocked, kept = true, s
			return ErrNoChange
		}
		a.apply(ctx, s, &in, op, cid, now, answerOK, localFIDO2, &out)
		if lastAttempt && (out.wrong || (out.refusal != nil && out.refusal.fault == nil)) {
			// This wrong answer was the user's last for the factor.
			BlockSession(s, now, now.Add(a.OTP.BlockFor))
			out.blocked = true
		}
		return nil
	})
	if errors.Is(err, ErrNoChange) {
		s, err = kept, nil
	}
	if errors.Is(err, state.ErrNotFound) {
		a.fail(w, outXML, http.StatusBadRequest, authnCodeUnknownCID, "unknown correlationId", "")
		return
	} else if err != nil {
		a.storeFail(w, outXML, "update", err)
		return
	}
	if counted != "" && counted != state.FactorTOTP && counted != state.FactorFIDO2 && !out.blocked && !out.wrong && out.refusal == nil {
		// A right code: the user's count for the factor starts again.
		if err := ClearAttempts(ctx, a.Env.Store, ukey, counted); err != nil {
			a.Env.Logger.Warn("authn could not clear the attempt count", zap.Error(err))
		}
	}
	log := a.Env.Logger.With(zap.String("session", key.Short()), zap.String("op", op))
	if counted == state.FactorFIDO2 && !answerOK {
		a.passkeyRefused(r, log, s, ukey, passkeyWhy, out.blocked)
	}
	switch {
	case out.blocked:
		log.Info("authn challenge blocked")
		w.Header().Set("Retry-After", RetryAfter(s.BlockedUntil, now))
		a.fail(w, outXML, http.StatusBadRequest, authnCodeBlocked, state.ReasonTooManyAttempts, state.StatusChallengeBlocked)
		return
	case out.retry != nil:
		w.Header().Set("Retry-After", RetryAfter(out.retry.After, now))
		a.fail(w, outXML, http.StatusTooManyRequests, authnCodeRetry, out.retry.Err.Error(), "")
		return
	case out.refusal != nil && out.refusal.fault != nil:
		a.storeFail(w, outXML, "user", out.refusal.fault)
		return
	case out.refusal != nil:
		log.Info("authn request refused", zap.String("code", out.refusal.code))
		a.fail(w, outXML, http.StatusBadRequest, out.refusal.code, out.refusal.msg, "")
		return
	}
	if out.code != "" && !a.deliver(w, r, outXML, s, &out) {
		return
	}
	msg := s.StatusReason
	if out.wrong {
		msg = "wrong_answer"
	}
	log.Info("authn step done", zap.String("status", string(s.Status)))
	resp := updateAuthnResponse{
		Status:        authnStatus{Code: "0", Message: msg, Status: string(s.EffectiveStatus(now))},
		CorrelationID: cid,
		Nonce:         out.nonce,
		SessionID:     a.Env.SessionID(s),
	}
	if op == opInit && passkeyOptions != nil {
		resp.InitContext = a.passkeyInitContext(passkeyOptions)
	}
	writeAuthn(w, http.StatusOK, outXML, resp)
}

// blockedInit answers an Init of a factor blocked for the user: 400 with
// 1009 "challenge blocked" and Retry-After, as a blocked session is
// answered. Nothing was sent or written.
func (a *Authn) blockedInit(w http.ResponseWriter, outXML bool, key state.Key, until, now time.Time) {
	a.Env.Logger.Info("authn init refused: the factor is blocked", zap.String("session", key.Short()))
	w.Header().Set("Retry-After", RetryAfter(until, now))
	a.fail(w, outXML, http.StatusBadRequest, authnCodeBlocked, state.ReasonTooManyAttempts, state.StatusChallengeBlocked)
}

// canonicalOp returns the documented spelling of a challengeop given in
// any letter case, or "" for an unknown one.
func canonicalOp(op string) string {
	for _, o := range []string{opInit, opValidate, opFinalize} {
		if strings.EqualFold(strings.TrimSpace(op), o) {
			return o
		}
	}
	return ""
}

// userOf returns the user a PUT is about: the session's, else the one
// named in challengedata.
func (a *Authn) userOf(s *state.Session, in *updateAuthnRequest) string {
	if s.UserID != "" || in.ChallengeData == nil {
		return s.UserID
	}
	return strings.TrimSpace(string(in.ChallengeData.UserID))
}

func (a *Authn) inCooldown(s *state.Session, now time.Time) bool {
	ch := s.Challenge
	return ch != nil && !ch.OTPIssued.IsZero() && now.Before(ch.OTPIssued.Add(a.OTP.Cooldown))
}

// check returns why the request cannot run on s, or nil. It changes
// nothing.
func (a *Authn) check(ctx context.Context, s *state.Session, in *updateAuthnRequest, op, cid string, now time.Time, localFIDO2 bool) *authnRefusal {
	ch := s.Challenge
	switch {
	case ch == nil || !ctEqual([]byte(ch.CorrelationID), []byte(hashCorrelation(cid))):
		return &authnRefusal{code: authnCodeUnknownCID, msg: "unknown correlationId"}
	case ch.Closed:
		return &authnRefusal{code: authnCodeUnknownCID, msg: "the correlationId is closed (finalized)"}
	case !now.Before(ch.Expiry):
		return &authnRefusal{code: authnCodeExpired, msg: "the correlationId has expired"}
	case op == "":
		return &authnRefusal{code: authnCodeBadRequest, msg: "challengeop must be Init, Validate or Finalize"}
	}
	if in.Nonce == nil || *in.Nonce == "" {
		if op != opInit {
			return &authnRefusal{code: authnCodeNonce, msg: "nonce is required"}
		}
	} else if !ctEqual(nonceHash(string(*in.Nonce)), ch.NonceHash) {
		return &authnRefusal{code: authnCodeNonce, msg: "nonce is stale or already used"}
	}
	switch op {
	case opInit:
		cd := in.ChallengeData
		if cd == nil || cd.Factor == "" {
			return &authnRefusal{code: authnCodeBadRequest, msg: "challengedata.factor is required"}
		}
		if !slices.Contains(state.Factors, string(cd.Factor)) {
			return &authnRefusal{code: authnCodeUnknownFac, msg: "unknown factor; known factors are " + strings.Join(state.Factors, ", ")}
		}
		named := strings.TrimSpace(string(cd.UserID))
		if s.UserID == "" && named == "" {
			return &authnRefusal{code: authnCodeOutOfOrder, msg: "no user is identified: give challengedata.userId"}
		}
		namedKey, err := keyOrFault(ctx, memoDirectory(ctx, a.Users), named)
		if named != "" && IsDirectoryFault(err) {
			return faultRefusal(err)
		}
		if named != "" && err != nil {
			return &authnRefusal{code: authnCodeBadRequest, msg: "challengedata.userId: " + err.Error()}
		}
		if s.UserID != "" && named != "" && namedKey != s.UserID {
			return &authnRefusal{code: authnCodeBadRequest, msg: "challengedata.userId is not the user of this challenge"}
		}
		if len(named) > 256 {
			return &authnRefusal{code: authnCodeBadRequest, msg: "challengedata.userId is too long"}
		}
		user, err := a.resolveUser(ctx, a.userOf(s, in), s.GroupName)
		if err != nil {
			return faultRefusal(err)
		}
		if len(user.factors) == 0 {
			return &authnRefusal{code: authnCodeUnavailable, msg: "unavailable_for_user: the user has no registered factor (missing registration)"}
		}
		if !slices.Contains(user.factors, string(cd.Factor)) {
			return &authnRefusal{code: authnCodeUnavailable, msg: "unavailable_for_user: " + string(cd.Factor) + " is not available for this user"}
		}
	case opValidate:
		switch {
		case ch.Factor == "":
			return &authnRefusal{code: authnCodeOutOfOrder, msg: "Validate before Init"}
		case !passiveFor(ch.Factor, localFIDO2):
			return &authnRefusal{code: authnCodeNotPassive, msg: ch.Factor + " is not a passive factor: use Finalize"}
		case in.ChallengeAnswer == nil || *in.ChallengeAnswer == "":
			return &authnRefusal{code: authnCodeBadRequest, msg: "challengeAnswer is required"}
		}
	case opFinalize:
		if ch.Factor == "" {
			return &authnRefusal{code: authnCodeOutOfOrder, msg: "Finalize before Init"}
		}
		reason := string(in.ChallengeResultReason)
		if reason != "" && !slices.Contains(authnReasons, reason) {
			return &authnRefusal{code: authnCodeBadRequest, msg: "challengeResultReason must be one of " + strings.Join(authnReasons, ", ")}
		}
		switch string(in.ChallengeResult) {
		case resultSuccess:
			if passiveFor(ch.Factor, localFIDO2) && s.EffectiveStatus(now) != state.StatusAuthenticated {
				return &authnRefusal{code: authnCodeOutOfOrder, msg: "a passive factor is finalized with Success only after a right Validate"}
			}
		case resultFailure:
			if reason == "" {
				return &authnRefusal{code: authnCodeBadRequest, msg: "challengeResultReason is required with Failure"}
			}
		case resultError:
		default:
			return &authnRefusal{code: authnCodeBadRequest, msg: "challengeResult must be Success, Failure or Error"}
		}
	}
	return nil
}

// apply runs the request on the private copy s, recording what happened in
// out. A refused request counts as an attempt.
func (a *Authn) apply(ctx context.Context, s *state.Session, in *updateAuthnRequest, op, cid string, now time.Time, answerOK, localFIDO2 bool, out *putOutcome) {
	if s.EffectiveStatus(now) == state.StatusChallengeBlocked {
		out.blocked = true
		return
	}
	if ref := a.check(ctx, s, in, op, cid, now, localFIDO2); ref != nil {
		out.refusal = ref
		if ref.fault == nil {
			out.blocked = a.OTP.Fail(s, now) == state.OTPBlocked
		}
		return
	}
	ch := s.Challenge
	out.prevNonce = ch.NonceHash
	switch op {
	case opInit:
		factor := string(in.ChallengeData.Factor)
		if s.UserID == "" {
			u, err := a.resolveUser(ctx, a.userOf(s, in), s.GroupName)
			if err != nil {
				out.refusal = faultRefusal(err)
				return
			}
			s.UserID, s.LoginName, s.GroupName = u.id, u.login, u.group
			s.SetDisplayName(u.name)
			if u.store != "" {
				s.IDStoreName = u.store
			}
		}
		user, err := a.resolveUser(ctx, s.UserID, s.GroupName)
		if err != nil {
			out.refusal = faultRefusal(err)
			return
		}
		out.user = user
		if err := s.SetStatus(state.StatusPendingVerification, now, "", 0); err != nil {
			out.blocked = true
			return
		}
		ch.Factor = factor
		if factor == state.FactorEmail || factor == state.FactorSMS {
			code, exp, err := a.OTP.Issue(s, a.Key, now)
			if re, ok := errors.AsType[*state.RetryError](err); ok {
				out.retry = re
				return
			} else if err != nil {
				out.blocked = true
				return
			}
			out.code, out.codeExp = code, exp
		} else {
			ch.AnswerHash, ch.OTPUsed, ch.OTPIssued, ch.OTPExpiry = nil, false, time.Time{}, time.Time{}
		}
	case opValidate:
		answer := string(*in.ChallengeAnswer)
		var res state.OTPResult
		if ch.Factor == state.FactorTOTP || ch.Factor == state.FactorFIDO2 {
			if answerOK {
				res = state.OTPOK
				_ = a.OTP.Pass(s, ch.Factor, now)
			} else {
				res = a.OTP.Fail(s, now)
			}
		} else {
			res = a.OTP.Verify(s, a.Key, answer, now)
		}
		switch res {
		case state.OTPOK:
		case state.OTPWrong:
			out.wrong = true
		case state.OTPBlocked:
			out.blocked = true
			return
		default:
			out.refusal = &authnRefusal{code: authnCodeOutOfOrder, msg: "no live one-time code (" + res.String() + "): Init again"}
			out.blocked = a.OTP.Fail(s, now) == state.OTPBlocked
			return
		}
	case opFinalize:
		reason := string(in.ChallengeResultReason)
		var err error
		switch string(in.ChallengeResult) {
		case resultSuccess:
			err = a.OTP.Pass(s, ch.Factor, now)
		case resultFailure:
			err = s.SetStatus(state.StatusFailed, now, reason, 0)
		case resultError:
			err = s.SetStatus(state.StatusError, now, reason, 0)
		}
		if err != nil {
			out.blocked = true
			return
		}
		ch.Closed = true
	}
	out.nonce, ch.NonceHash = newNonce()
	s.UpdateTime = now
}

// deliver sends the code made by Init. On failure it gives the caller its
// nonce back (the step did not happen for it) and answers 502
// channel_comm_error.
func (a *Authn) deliver(w http.ResponseWriter, r *http.Request, outXML bool, s *state.Session, out *putOutcome) bool {
	m := delivery.Message{Channel: delivery.ChannelEmail, To: out.user.mail, Login: out.user.login, Code: out.code, ExpiresAt: out.codeExp}
	if s.Challenge.Factor == state.FactorSMS {
		m.Channel, m.To = delivery.ChannelSMS, out.user.phone
	}
	err := a.Delivery.Deliver(r.Context(), m)
	if err == nil {
		return true
	}
	a.Env.Logger.Warn("authn otp delivery failed", zap.String("session", s.Key.Short()), zap.Error(err))
	issued := nonceHash(out.nonce)
	ctx, cancel := a.Env.StoreContext(r)
	defer cancel()
	_, _ = a.Env.Store.Update(ctx, s.Key, func(s *state.Session) error {
		if s.Challenge == nil || !ctEqual(s.Challenge.NonceHash, issued) {
			return ErrNoChange
		}
		s.Challenge.NonceHash = out.prevNonce
		return nil
	})
	a.fail(w, outXML, http.StatusBadGateway, authnCodeChannel, "channel_comm_error: the one-time code could not be delivered", "")
	return false
}
