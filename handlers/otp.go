package handlers

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/state"
)

// OTPSessions serves the OTP session family (otp-sessions.md): PUT
// /sessions/{sessionId}, POST /user/otp/verify, POST /user/otp and POST
// /user/otp/sendmail, behind bearer tokens, with JSON:API errors; and, as
// our extension, POST /user/totp/enroll for users of the users file.
type OTPSessions struct {
	Env  *Env
	Auth *BearerAuth
	// Users is the users file; nil means no user is known (codes are made
	// but no address is found for them).
	Users state.Directory
	// OTP and TOTP are the factor policies.
	OTP  state.OTPPolicy
	TOTP state.TOTPPolicy
	// Key is the server's key for the codes' keyed hashes.
	Key []byte
	// Delivery sends codes; nil skips delivery with a log line.
	Delivery delivery.Deliverer
	// ExposeOTP returns the code in the answers of PUT /sessions/{id} and
	// POST /user/otp, as the vendor's API does.
	ExposeOTP bool
	// CookieName is the session cookie read when a body names no session.
	CookieName string
}

// Register mounts the family's endpoints on mux.
func (o *OTPSessions) Register(mux *http.ServeMux) {
	mux.Handle("PUT /sessions/{sessionId}", o.guard(o.putSession))
	mux.Handle("POST /user/otp/verify", o.guard(o.verify))
	mux.Handle("POST /user/otp", o.guard(o.create))
	mux.Handle("POST /user/otp/sendmail", o.guard(o.sendmail))
	mux.Handle("POST /user/totp/enroll", o.guard(o.enrollTOTP))
	for p, allow := range map[string]string{
		"/sessions/{sessionId}": "PUT", "/user/otp/verify": "POST",
		"/user/otp": "POST", "/user/otp/sendmail": "POST", "/user/totp/enroll": "POST",
	} {
		mux.Handle(p, o.guard(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			jsonAPIFail(w, http.StatusMethodNotAllowed, "method-not-allowed", "method "+r.Method+" not allowed here", "")
		}))
	}
}

// otpMedia is the family's only encoding, in and out: JSON, including
// JSON:API's application/vnd.api+json.
var otpMedia = []string{mediaJSON}

// guard checks the bearer token and the media types.
func (o *OTPSessions) guard(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch res, until := o.Auth.Authenticate(r); res {
		case AuthOK:
		case AuthThrottled:
			w.Header().Set("Retry-After", RetryAfter(until, o.Env.Time()))
			jsonAPIFail(w, http.StatusTooManyRequests, "too-many-requests", "too many wrong bearer tokens from this address; try again later", "")
			return
		default:
			if r.Header.Get("Authorization") != "" {
				o.Env.EmitLoginFailed(r.Context(), "otp", FactorAPICredentials, "wrong_credentials", "", "", RemoteIP(r))
			}
			jsonAPIFail(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required", "")
			return
		}
		if _, _, merr := negotiate(r, otpMedia, otpMedia); merr != nil {
			code := "unsupported-media"
			if merr.Status == http.StatusNotAcceptable {
				code = "not-acceptable"
			}
			jsonAPIFail(w, merr.Status, code, merr.Msg, "")
			return
		}
		h(w, r)
	})
}

// otpAnswer is the body of 200/201 answers.
type otpAnswer struct {
	OTP       string `json:"otp,omitempty"`
	ExpiresAt string `json:"expiresAt"`
}

type putSessionBody struct {
	UserID         *string    `json:"userId"`
	PassedLoginOTP *LooseBool `json:"passedLoginOTP"`
}

// putSession creates or updates the session named in the path.
func (o *OTPSessions) putSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("sessionId")
	if state.ValidateID(id) != nil {
		jsonAPIFail(w, http.StatusNotFound, "session-not-found", "no session with that id", "")
		return
	}
	var in putSessionBody
	if !readJSONAPI(w, r, &in) {
		return
	}
	if in.UserID == nil || strings.TrimSpace(*in.UserID) == "" {
		jsonAPIFail(w, http.StatusBadRequest, "bad-request", "userId is required", "/userId")
		return
	}
	if in.PassedLoginOTP == nil {
		jsonAPIFail(w, http.StatusBadRequest, "bad-request", "passedLoginOTP is required", "/passedLoginOTP")
		return
	}
	r = r.WithContext(WithDirectoryMemo(r.Context()))
	userID, err := keyOrFault(r.Context(), memoDirectory(r.Context(), o.Users), *in.UserID)
	if err == nil {
		err = preflightUsers(r.Context(), o.Users, *in.UserID)
	}
	if IsDirectoryFault(err) {
		o.storeFail(w, "user", err)
		return
	}
	if err != nil {
		jsonAPIFail(w, http.StatusBadRequest, "bad-request", "userId: "+err.Error(), "/userId")
		return
	}
	ctx, cancel := o.Env.StoreContext(r)
	defer cancel()
	now := o.Env.Time()
	key := state.KeyOf(id)

	cur, err := o.Env.Store.Get(ctx, key)
	if errors.Is(err, state.ErrNotFound) {
		if !o.allowSend(w, ctx, userID, now) {
			return
		}
		s := o.Env.NewSession(id, now)
		s.UserID = userID
		if err := o.bindUser(r.Context(), s); err != nil {
			o.storeFail(w, "user", err)
			return
		}
		if err := s.SetStatus(state.StatusPendingVerification, now, "", 0); err != nil {
			o.storeFail(w, "create", err)
			return
		}
		code, exp, err := o.OTP.Issue(s, o.Key, now)
		if err != nil {
			o.storeFail(w, "issue", err)
			return
		}
		switch err := o.Env.CreateSessionIn(ctx, "otp", s); {
		case err == nil:
			o.Env.Logger.Info("otp session created", zap.String("session", key.Short()))
			o.deliverAndAnswer(w, r, s, code, exp, http.StatusOK, o.ExposeOTP)
			return
		case !errors.Is(err, state.ErrExists):
			o.storeFail(w, "create", err)
			return
		}
		// Created meanwhile by a concurrent call: update it below.
		cur = nil
	} else if err != nil {
		o.storeFail(w, "get", err)
		return
	}
	// Apply the send limit before a new code is made, as far as the
	// snapshot tells (a concurrent change is caught after the update).
	limitChecked := false
	if cur != nil && cur.UserID == userID && !bool(*in.PassedLoginOTP) && !cur.HasLiveOTP(now) &&
		cur.EffectiveStatus(now) != state.StatusChallengeBlocked &&
		(cur.Challenge == nil || !now.Before(cur.Challenge.OTPIssued.Add(o.OTP.Cooldown))) {
		if !o.allowSend(w, ctx, userID, now) {
			return
		}
		limitChecked = true
	}

	var code string
	var exp time.Time
	issued := false
	s, err := o.Env.UpdateSession(ctx, "otp", "", key, func(s *state.Session) error {
		code, issued = "", false
		if s.UserID != userID {
			return state.ErrNotFound
		}
		if *in.PassedLoginOTP {
			if s.EffectiveStatus(now) == state.StatusAuthenticated {
				return nil
			}
			if s.Challenge != nil {
				s.Challenge.OTPUsed = true // the login OTP was passed: spent
			}
			return o.OTP.Pass(s, "login-otp", now)
		}
		if s.HasLiveOTP(now) {
			return nil
		}
		if s.EffectiveStatus(now) != state.StatusPendingVerification {
			if err := s.SetStatus(state.StatusPendingVerification, now, "", 0); err != nil {
				return err
			}
		}
		var err error
		code, exp, err = o.OTP.Issue(s, o.Key, now)
		issued = err == nil
		return err
	})
	if err != nil {
		o.storeFail(w, "update", err)
		return
	}
	if !issued {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !limitChecked && !o.allowSend(w, ctx, userID, now) {
		return
	}
	o.deliverAndAnswer(w, r, s, code, exp, http.StatusOK, o.ExposeOTP)
}

// bindUser copies the identity store's data of the session's user; a store
// that cannot answer is a *DirectoryError.
func (o *OTPSessions) bindUser(ctx context.Context, s *state.Session) error {
	if o.Users == nil {
		s.LoginName = s.UserID
		return nil
	}
	u, ok, err := memoDirectory(ctx, o.Users).Lookup(ctx, s.UserID)
	if err != nil {
		return directoryFault(err)
	}
	if ok && u.ID == s.UserID {
		s.LoginName, s.GroupName = u.Login, u.Group
		s.SetDisplayName(u.Name)
		if u.Store != "" {
			s.IDStoreName = u.Store
		}
		return nil
	}
	s.LoginName = s.UserID
	return nil
}

// allowSend applies the user's hourly send limit (on refusal it answers
// 429) and refuses a code while wrong login codes on any session have
// blocked the user's login-code factor (403 challenge-blocked): the block
// is read in the same update of the user's state that counts the send.
func (o *OTPSessions) allowSend(w http.ResponseWriter, ctx context.Context, userID string, now time.Time) bool {
	_, err := o.Env.Store.UpdateUser(ctx, UserKey(ctx, o.Users, userID), func(u *state.UserState) error {
		if until, blocked := u.FactorBlocked(state.FactorOTP, now); blocked {
			return &state.BlockedError{Until: until}
		}
		return o.OTP.AllowSend(u, now)
	})
	if err == nil {
		return true
	}
	o.storeFail(w, "send limit", err)
	return false
}

// destination returns the mail address of the session's user: from the
// identity store, else the session's "mail" attribute. A store that
// cannot answer is a *DirectoryError.
func (o *OTPSessions) destination(ctx context.Context, s *state.Session) (login, to string, err error) {
	login = s.LoginName
	if o.Users != nil {
		u, ok, err := memoDirectory(ctx, o.Users).Lookup(ctx, s.UserID)
		if err != nil {
			return "", "", directoryFault(err)
		}
		if ok {
			return u.Login, u.Mail, nil
		}
	}
	return login, s.UserAttributes["mail"], nil
}

// deliverAndAnswer mails code to the session's user (skipped with a log
// line when no address is known) and answers status with the code (if
// expose) and its expiry. A failed delivery answers 502 channel_comm_error.
func (o *OTPSessions) deliverAndAnswer(w http.ResponseWriter, r *http.Request, s *state.Session,
	code string, exp time.Time, status int, expose bool,
) {
	if !o.deliver(w, r, s, code, exp, false) {
		return
	}
	out := otpAnswer{ExpiresAt: Timestamp(exp)}
	if expose {
		out.OTP = code
	}
	WriteJSON(w, status, "", out)
}

// deliver sends code by mail. With required set, a user without an address
// is an error (422); otherwise it is skipped. It answers failures itself.
func (o *OTPSessions) deliver(w http.ResponseWriter, r *http.Request, s *state.Session, code string,
	exp time.Time, required bool,
) bool {
	login, to, err := o.destination(r.Context(), s)
	if err != nil {
		o.storeFail(w, "user", err)
		return false
	}
	if to == "" || o.Delivery == nil {
		if required {
			jsonAPIFail(w, http.StatusUnprocessableEntity, "no-destination", "no mail address or delivery is configured for this user", "")
			return false
		}
		o.Env.Logger.Info("otp delivery skipped: no address or delivery configured",
			zap.String("session", s.Key.Short()))
		return true
	}
	err = o.Delivery.Deliver(r.Context(), delivery.Message{Channel: delivery.ChannelEmail, To: to, Login: login, Code: code, ExpiresAt: exp})
	if err != nil {
		o.Env.Logger.Warn("otp delivery failed", zap.String("session", s.Key.Short()), zap.Error(err))
		jsonAPIFail(w, http.StatusBadGateway, "channel_comm_error", "the one-time password could not be delivered", "")
		return false
	}
	return true
}

// storeFail answers an error of a store call or of the OTP engine.
func (o *OTPSessions) storeFail(w http.ResponseWriter, op string, err error) {
	var be *state.BlockedError
	var re *state.RetryError
	switch {
	case IsDirectoryFault(err):
		o.Env.Logger.Error("identity store failed", zap.String("op", op), zap.Error(err))
		storeDown(w)
		jsonAPIFail(w, http.StatusServiceUnavailable, "store-unavailable", "identity store unavailable", "")
	case errors.Is(err, state.ErrNotFound):
		jsonAPIFail(w, http.StatusNotFound, "session-not-found", "no session with that id for this user", "")
	case errors.As(err, &be):
		w.Header().Set("Retry-After", RetryAfter(be.Until, o.Env.Time()))
		jsonAPIFail(w, http.StatusForbidden, "challenge-blocked", "too many wrong answers; try again later", "")
	case errors.As(err, &re):
		w.Header().Set("Retry-After", RetryAfter(re.After, o.Env.Time()))
		jsonAPIFail(w, http.StatusTooManyRequests, "too-many-requests", re.Err.Error(), "")
	case isTimeout(err):
		storeDown(w)
		jsonAPIFail(w, http.StatusServiceUnavailable, "store-unavailable", "session store did not answer in time", "")
	case errors.Is(err, state.ErrUnavailable):
		o.Env.Logger.Error("session store failed", zap.String("op", op), zap.Error(err))
		storeDown(w)
		jsonAPIFail(w, http.StatusServiceUnavailable, "store-unavailable", "session store unavailable", "")
	default:
		o.Env.Logger.Error("otp api failed", zap.String("op", op), zap.Error(err))
		jsonAPIFail(w, http.StatusInternalServerError, "internal-error", "internal error", "")
	}
}

// readJSONAPI reads and decodes a JSON body into v, answering a JSON:API
// error and returning false when it cannot.
func readJSONAPI(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := ReadBody(w, r)
	if err == nil {
		err = DecodeJSON(body, v)
	}
	if err != nil {
		jsonAPIBadInput(w, err)
		return false
	}
	return true
}
