package handlers

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
)

// OTP types of POST /user/otp/verify. login and totp are supported; the
// vendor's account and device-totp are known but answer 422.
const (
	otpTypeLogin = "login"
	otpTypeTOTP  = "totp"
)

var knownOTPTypes = []string{otpTypeLogin, "account", otpTypeTOTP, "device-totp"}

type verifyBody struct {
	OTP       *string  `json:"otp"`
	Types     []string `json:"types"`
	SessionID string   `json:"sessionId"`
}

type sessionBody struct {
	SessionID string `json:"sessionId"`
}

// sessionKey returns the key of the session named in the body or, failing
// that, by the session cookie; ok is false (and the answer written) when
// findSession returns the session named in the body or by the cookie (see
// sessionKey), answering failures itself.
func (o *OTPSessions) findSession(ctx context.Context, w http.ResponseWriter, r *http.Request, fromBody string) (*state.Session, bool) {
	key, ok := o.sessionKey(w, r, fromBody)
	if !ok {
		return nil, false
	}
	cur, err := o.Env.Store.Get(ctx, key)
	if err != nil {
		o.storeFail(w, "get", err)
		return nil, false
	}
	return cur, true
}

// neither names a well-formed id.
func (o *OTPSessions) sessionKey(w http.ResponseWriter, r *http.Request, fromBody string) (state.Key, bool) {
	id := fromBody
	if id == "" && o.CookieName != "" {
		if c, err := r.Cookie(o.CookieName); err == nil {
			id = c.Value
		}
	}
	if id == "" {
		jsonAPIFail(w, http.StatusBadRequest, "bad-request", "sessionId is required (or the session cookie)", "/sessionId")
		return state.Key{}, false
	}
	if state.ValidateID(id) != nil {
		jsonAPIFail(w, http.StatusNotFound, "session-not-found", "no session with that id", "/sessionId")
		return state.Key{}, false
	}
	return state.KeyOf(id), true
}

// verify checks a login OTP or a TOTP code for a session.
func (o *OTPSessions) verify(w http.ResponseWriter, r *http.Request) {
	var in verifyBody
	if !readJSONAPI(w, r, &in) {
		return
	}
	if in.OTP == nil || *in.OTP == "" {
		jsonAPIFail(w, http.StatusBadRequest, "bad-request", "otp is required", "/otp")
		return
	}
	types := in.Types
	if len(types) == 0 {
		types = []string{otpTypeLogin, otpTypeTOTP}
	}
	for i, t := range types {
		if !slices.Contains(knownOTPTypes, t) {
			jsonAPIFail(w, http.StatusUnprocessableEntity, "unsupported-type",
				"unknown type; allowed values are "+strings.Join(knownOTPTypes, ", "), "/types/"+strconv.Itoa(i))
			return
		}
		if t != otpTypeLogin && t != otpTypeTOTP {
			jsonAPIFail(w, http.StatusUnprocessableEntity, "unsupported-type",
				"type "+t+" is not supported here; use login or totp", "/types/"+strconv.Itoa(i))
			return
		}
	}
	r = r.WithContext(WithDirectoryMemo(r.Context()))
	ctx, cancel := o.Env.StoreContext(r)
	defer cancel()
	cur, ok := o.findSession(ctx, w, r, in.SessionID)
	if !ok {
		return
	}
	if err := preflightUsers(ctx, o.Users, cur.UserID); err != nil {
		o.storeFail(w, "user", err)
		return
	}
	key, now := cur.Key, o.Env.Time()
	if cur.EffectiveStatus(now) == state.StatusChallengeBlocked {
		o.storeFail(w, "verify", &state.BlockedError{Until: cur.BlockedUntil})
		return
	}
	answer := *in.OTP

	// The answer is counted against the user's factors before it is
	// checked (see ReserveAttempt), in the same step as the TOTP check,
	// whose replay guard lives in the user's record too.
	ukey := UserKey(ctx, o.Users, cur.UserID)
	var secret string
	var factors []string
	if slices.Contains(types, otpTypeTOTP) && o.Users != nil {
		u, ok, err := memoDirectory(ctx, o.Users).Lookup(ctx, cur.UserID)
		if err != nil {
			o.storeFail(w, "user", directoryFault(err))
			return
		}
		if ok && u.TOTPSecret != "" {
			secret = u.TOTPSecret
			factors = append(factors, state.FactorTOTP)
		}
	}
	if slices.Contains(types, otpTypeLogin) {
		factors = append(factors, state.FactorOTP)
	}
	totpOK, lastTOTP, lastOTP := false, false, false
	var userBlock time.Time
	if len(factors) > 0 {
		_, err := o.Env.Store.UpdateUser(ctx, ukey, func(us *state.UserState) error {
			totpOK, lastTOTP, lastOTP = false, false, false
			for _, f := range factors {
				l, err := o.OTP.ReserveAttempt(us, f, now)
				if err != nil {
					return err
				}
				if f == state.FactorTOTP {
					lastTOTP = l
				} else {
					lastOTP = l
				}
			}
			if secret == "" {
				return nil
			}
			res, err := o.TOTP.Check(us, secret, answer, now)
			if err != nil {
				return err
			}
			if totpOK = res == state.TOTPOK; totpOK {
				us.ClearAttempts(factors...)
			}
			return nil
		})
		if be, ok := errors.AsType[*state.BlockedError](err); ok {
			userBlock = be.Until
		} else if err != nil {
			o.storeFail(w, "totp", err)
			return
		}
	}
	var res state.OTPResult
	_, err := o.Env.UpdateSession(ctx, "otp", "", key, func(s *state.Session) error {
		switch {
		case !userBlock.IsZero():
			BlockSession(s, now, userBlock)
			res = state.OTPBlocked
			return nil
		case totpOK:
			res = state.OTPOK
			return o.OTP.Pass(s, state.FactorTOTP, now)
		case slices.Contains(types, otpTypeLogin) && s.Challenge != nil && len(s.Challenge.AnswerHash) > 0:
			res = o.OTP.Verify(s, o.Key, answer, now)
		default:
			res = o.OTP.Fail(s, now)
		}
		last := lastTOTP || (lastOTP && res == state.OTPWrong)
		if last && res != state.OTPOK && res != state.OTPBlocked {
			// This wrong answer was the user's last for the factor.
			BlockSession(s, now, now.Add(o.OTP.BlockFor))
			res = state.OTPBlocked
		}
		return nil
	})
	if err != nil {
		o.storeFail(w, "verify", err)
		return
	}
	switch {
	case res == state.OTPOK && !totpOK:
		if err := ClearAttempts(ctx, o.Env.Store, ukey, factors...); err != nil {
			o.Env.Logger.Warn("otp could not clear the attempt count", zap.Error(err))
		}
	case slices.Contains(factors, state.FactorOTP) && (res == state.OTPExpired || res == state.OTPUsed || res == state.OTPNone):
		// No live code was tried: the answer does not count for it.
		_, err := o.Env.Store.UpdateUser(ctx, ukey, func(us *state.UserState) error {
			if !o.OTP.ReleaseAttempt(us, state.FactorOTP, now) {
				return ErrNoChange
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrNoChange) {
			o.Env.Logger.Warn("otp could not release an attempt", zap.Error(err))
		}
	}
	o.Env.Logger.Info("otp verified", zap.String("session", key.Short()), zap.String("result", res.String()))
	switch res {
	case state.OTPOK:
		w.WriteHeader(http.StatusNoContent)
	case state.OTPBlocked:
		until := now.Add(o.OTP.BlockFor)
		if !userBlock.IsZero() {
			until = userBlock
		}
		o.storeFail(w, "verify", &state.BlockedError{Until: until})
	default:
		jsonAPIFail(w, http.StatusNotFound, "invalid-otp", "the one-time password is "+invalidDetail(res), "/otp")
	}
}

func invalidDetail(r state.OTPResult) string {
	switch r {
	case state.OTPExpired:
		return "expired"
	case state.OTPUsed:
		return "already used"
	case state.OTPNone:
		return "not valid: none was issued for this session"
	default:
		return "wrong"
	}
}

// create makes a new login OTP for the session (201 {otp, expiresAt}),
// without mailing it.
func (o *OTPSessions) create(w http.ResponseWriter, r *http.Request) {
	o.issue(w, r, false)
}

// sendmail makes a new login OTP and mails it to the session's user (204).
func (o *OTPSessions) sendmail(w http.ResponseWriter, r *http.Request) {
	o.issue(w, r, true)
}

func (o *OTPSessions) issue(w http.ResponseWriter, r *http.Request, mail bool) {
	body, err := ReadBody(w, r)
	if err != nil {
		jsonAPIBadInput(w, err)
		return
	}
	var in sessionBody
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := DecodeJSON(body, &in); err != nil {
			jsonAPIBadInput(w, err)
			return
		}
	}
	r = r.WithContext(WithDirectoryMemo(r.Context()))
	ctx, cancel := o.Env.StoreContext(r)
	defer cancel()
	cur, ok := o.findSession(ctx, w, r, in.SessionID)
	if !ok {
		return
	}
	if err := preflightUsers(ctx, o.Users, cur.UserID); err != nil {
		o.storeFail(w, "user", err)
		return
	}
	key, now := cur.Key, o.Env.Time()
	if mail {
		_, to, err := o.destination(r.Context(), cur)
		if err != nil {
			o.storeFail(w, "user", err)
			return
		}
		if to == "" || o.Delivery == nil {
			jsonAPIFail(w, http.StatusUnprocessableEntity, "no-destination", "no mail address or delivery is configured for this user", "")
			return
		}
	}
	// A code handed to the caller (who delivers it) counts as one sent:
	// the hourly limit and the factor's block hold for both.
	if !o.allowSend(w, ctx, cur.UserID, now) {
		return
	}
	var code string
	var exp time.Time
	s, err := o.Env.UpdateSession(ctx, "otp", "", key, func(s *state.Session) error {
		var err error
		code, exp, err = o.OTP.Issue(s, o.Key, now)
		return err
	})
	if err != nil {
		o.storeFail(w, "issue", err)
		return
	}
	if !mail {
		out := otpAnswer{ExpiresAt: Timestamp(exp)}
		if o.ExposeOTP {
			out.OTP = code
		}
		WriteJSON(w, http.StatusCreated, "", out)
		return
	}
	if o.deliver(w, r, s, code, exp, true) {
		w.WriteHeader(http.StatusNoContent)
	}
}
