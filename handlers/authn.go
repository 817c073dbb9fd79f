package handlers

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/state"
)

// Authn serves the challenge flow API (authn.md): POST /authn/v1 starts an
// authentication and lists the user's factors; PUT /authn/v1 runs Init,
// Validate and Finalize on it. Both are also served under
// /oaa/runtime/authn/v1. Callers authenticate with HTTP Basic and, on POST,
// with the clientId/clientSecret of a configured integration client.
//
// The challenge (correlationId, nonce, factor, attempts, expiry) lives in
// the session record, so it survives a reload and persists with the store.
// A correlationId is base64url(session key ‖ 16 random bytes): PUT finds the
// session from it without an index, and the record keeps only its SHA-256.
// Nonces are kept only as SHA-256 hashes too.
type Authn struct {
	Env     *Env
	Auth    *BasicAuth
	Clients *AuthnClients
	// Users is the users file; nil means no user is known.
	Users state.Directory
	// AcceptUnknownUsers takes the caller's word for a user missing from
	// the users file, with DefaultFactors.
	AcceptUnknownUsers bool
	DefaultFactors     []string
	// OTP and TOTP are the factor policies (shared with the OTP family).
	OTP  state.OTPPolicy
	TOTP state.TOTPPolicy
	// Key is the server's key for the codes' keyed hashes.
	Key []byte
	// Delivery sends codes; Channels tells which channels it can serve
	// (nil: every channel when Delivery is set).
	Delivery delivery.Deliverer
	Channels func(channel string) bool
	// MaxTTL bounds timeToLiveInSec. Default: 1h.
	MaxTTL time.Duration
	// Passkeys, when set, makes ChallengeFIDO2 passive for the users with
	// passkeys registered here: Init returns the request options and
	// Validate verifies the assertion (see authn_passkey.go).
	Passkeys *Passkeys
}

// Answer codes of AuthnAPIResponse (status.code); "0" is success.
const (
	authnCodeBadRequest  = "1001"
	authnCodeBadClient   = "1002"
	authnCodeUnknownCID  = "1003"
	authnCodeNonce       = "1004"
	authnCodeOutOfOrder  = "1005"
	authnCodeUnknownFac  = "1006"
	authnCodeUnavailable = "1007"
	authnCodeNotPassive  = "1008"
	authnCodeBlocked     = "1009"
	authnCodeChannel     = "1010"
	authnCodeStore       = "1011"
	authnCodeRetry       = "1012"
	authnCodeExpired     = "1013"
)

// Challenge results and reasons of Finalize.
const (
	resultSuccess = "Success"
	resultFailure = "Failure"
	resultError   = "Error"
)

// authnReasons are the documented challengeResultReason values.
var authnReasons = []string{
	"wrong_answer", "too_many_attempts", "channel_comm_error", "other_error",
	"unavailable_for_user", "user_abandoned", "user_timedout",
}

const (
	defaultAuthnTTL = 300 * time.Second
	authnPathV1     = "/authn/v1"
	authnPathOAA    = "/oaa/runtime/authn/v1"
)

// Register mounts the family's endpoints on mux.
func (a *Authn) Register(mux *http.ServeMux) {
	for _, p := range []string{authnPathV1, authnPathOAA} {
		mux.HandleFunc("POST "+p, a.post)
		mux.HandleFunc("PUT "+p, a.put)
		mux.HandleFunc("DELETE "+p+authnCountersPath, a.resetCounters)
		mux.HandleFunc(p+authnCountersPath, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "DELETE")
			a.fail(w, authnAnswerXML(r), http.StatusMethodNotAllowed,
				authnCodeBadRequest, "method "+r.Method+" not allowed here", "")
		})
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "POST, PUT")
			a.fail(w, authnAnswerXML(r), http.StatusMethodNotAllowed,
				authnCodeBadRequest, "method "+r.Method+" not allowed here", "")
		})
	}
}

// fail writes an AuthnAPIResponse; st defaults to "error".
func (a *Authn) fail(w http.ResponseWriter, asXML bool, status int, code, msg string, st state.Status) {
	if st == "" {
		st = state.StatusError
	}
	writeAuthn(w, status, asXML, authnAPIResponse{Status: authnStatus{Code: code, Message: msg, Status: string(st)}})
}

// authorize checks Basic auth and answers 401 itself.
func (a *Authn) authorize(w http.ResponseWriter, r *http.Request, asXML bool) bool {
	_, res, until := a.Auth.Authenticate(r)
	a.Env.apiCredentialsFailed(r, "authn", a.Auth, res)
	switch res {
	case AuthOK:
		return true
	case AuthThrottled:
		now := a.Env.Time()
		w.Header().Set("Retry-After", RetryAfter(until, now))
		a.fail(w, asXML, http.StatusTooManyRequests, authnCodeRetry, "too many wrong credentials; try again later", "")
		return false
	case AuthBad:
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="authsession"`)
	a.fail(w, asXML, http.StatusUnauthorized, authnCodeBadClient, "valid Basic credentials are required", "")
	return false
}

// authnMedia are the family's encodings, in and out; JSON is the default.
var authnMedia = []string{mediaJSON, mediaXML}

// authnAnswerXML reports whether the answer to r is XML: chosen by Accept
// only, JSON when Accept is absent or allows neither.
func authnAnswerXML(r *http.Request) bool {
	m, _ := answerMedia(r, authnMedia...)
	return m == mediaXML
}

// readRequest checks Basic auth and the media types, then reads and decodes
// the body (JSON or XML with root) into v. It answers failures itself:
// 406, 415, 413 or 400; outXML tells how to answer.
func (a *Authn) readRequest(w http.ResponseWriter, r *http.Request, root string, v any) (outXML, ok bool) {
	in, out, merr := negotiate(r, authnMedia, authnMedia)
	outXML = out == mediaXML
	if !a.authorize(w, r, outXML) {
		return outXML, false
	}
	if merr != nil {
		a.fail(w, outXML, merr.Status, authnCodeBadRequest, merr.Msg, "")
		return outXML, false
	}
	body, err := ReadBody(w, r)
	if err == nil {
		err = decodeAuthn(body, in == mediaXML, root, v)
	}
	switch {
	case errors.Is(err, ErrTooLarge):
		a.fail(w, outXML, http.StatusRequestEntityTooLarge, authnCodeBadRequest, err.Error(), "")
		return outXML, false
	case err != nil:
		a.fail(w, outXML, http.StatusBadRequest, authnCodeBadRequest, err.Error(), "")
		return outXML, false
	}
	return outXML, true
}

// authnUser is what the flow needs to know about a user.
type authnUser struct {
	id, login, group string
	// name is the display name the identity store gives.
	name        string
	mail, phone string
	totpSecret  string
	// passkeys is how many passkeys the user has registered here (only
	// counted when Passkeys is set).
	passkeys int
	// store is the identity store that knows the user ("" for an
	// unknown user), the session's idStoreName.
	store string
	// factors are the factors the user can use, in state.Factors order.
	factors []string
}

// resolveUser finds userID in the users file or, if allowed, takes it as
// an unknown user with the default factors (its mail or phone being the id
// itself when it looks like one). A user that is neither has no factors.
//
// A directory that cannot answer is a *DirectoryError (see preflight),
// never an unknown user.
func (a *Authn) resolveUser(ctx context.Context, userID, group string) (authnUser, error) {
	dir := memoDirectory(ctx, a.Users)
	u := authnUser{id: userID, login: userID, group: group}
	if k, err := keyOrFault(ctx, dir, userID); err == nil {
		u.id = k
	} else if IsDirectoryFault(err) {
		return authnUser{}, err
	}
	var factors []string
	known := false
	if dir != nil {
		f, ok, err := dir.Lookup(ctx, userID)
		if err != nil {
			return authnUser{}, directoryFault(err)
		}
		if ok {
			known = true
			u.id, u.login, u.mail, u.phone, u.totpSecret = f.ID, f.Login, f.Mail, f.Phone, f.TOTPSecret
			u.name = f.Name
			u.store = f.Store
			if f.Group != "" {
				u.group = f.Group
			}
			factors = f.Factors
		}
	}
	if !known && a.AcceptUnknownUsers {
		factors = a.DefaultFactors
		if strings.Contains(userID, "@") {
			u.mail = userID
		} else if isPhone(userID) {
			u.phone = userID
		}
	}
	n, err := a.passkeyCount(ctx, u.id)
	if err != nil {
		return authnUser{}, err
	}
	if u.passkeys = n; u.passkeys > 0 && !slices.Contains(factors, state.FactorFIDO2) {
		factors = append(slices.Clip(factors), state.FactorFIDO2)
	}
	for _, f := range state.Factors {
		if slices.Contains(factors, f) && a.usable(&u, f) {
			u.factors = append(u.factors, f)
		}
	}
	return u, nil
}

// usable reports whether u can pass factor f here.
func (a *Authn) usable(u *authnUser, f string) bool {
	switch f {
	case state.FactorEmail:
		return u.mail != "" && a.canDeliver(delivery.ChannelEmail)
	case state.FactorSMS:
		return u.phone != "" && a.canDeliver(delivery.ChannelSMS)
	case state.FactorTOTP:
		return u.totpSecret != ""
	case state.FactorFIDO2:
		return true // an external factor, finalized by the caller
	}
	return false // ChallengeYOTP: no Yubico validation is configured
}

func (a *Authn) canDeliver(channel string) bool {
	if a.Delivery == nil {
		return false
	}
	return a.Channels == nil || a.Channels(channel)
}

func isPhone(s string) bool {
	digits := 0
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' && i == 0, c == '-', c == ' ', c == '(', c == ')', c == '.':
		default:
			return false
		}
	}
	return digits >= 6
}

// challengeInfo lists the user's factors with their masked prompts.
func (a *Authn) challengeInfo(u *authnUser) []authnChallengeInfo {
	out := make([]authnChallengeInfo, 0, len(u.factors))
	digits := strconv.Itoa(a.OTP.Digits)
	for _, f := range u.factors {
		ci := authnChallengeInfo{Factor: f, FactorContext: authnFactorContext{ChallengeAttrMap: []authnAttr{}}}
		switch f {
		case state.FactorEmail:
			ci.FactorContext.Prompts = []authnKeyValue{{Key: "email", Value: MaskMail(u.mail)}}
			ci.FactorContext.ChallengeAttrMap = []authnAttr{{Key: "otpLength", Value: authnAttrValue{Value: digits}}}
		case state.FactorSMS:
			ci.FactorContext.Prompts = []authnKeyValue{{Key: "phone", Value: MaskPhone(u.phone)}}
			ci.FactorContext.ChallengeAttrMap = []authnAttr{{Key: "otpLength", Value: authnAttrValue{Value: digits}}}
		case state.FactorTOTP:
			ci.FactorContext.Prompts = []authnKeyValue{{Key: "totp", Value: "code of your authenticator app"}}
			ci.FactorContext.ChallengeAttrMap = []authnAttr{{Key: "otpLength", Value: authnAttrValue{Value: strconv.Itoa(a.TOTP.Digits)}}}
		case state.FactorFIDO2:
			ci.FactorContext.Prompts = []authnKeyValue{{Key: "fido2", Value: "security key"}}
			if u.passkeys > 0 && a.Passkeys != nil {
				ci.FactorContext.Prompts = []authnKeyValue{{Key: "fido2", Value: "passkey"}}
				ci.FactorContext.ChallengeAttrMap = []authnAttr{{Key: passkeyAttrRPID, Value: authnAttrValue{Value: a.Passkeys.Config.RPID}}}
			}
		}
		out = append(out, ci)
	}
	return out
}

// newCorrelation returns a correlationId for the session under key and the
// hash kept in the record.
func newCorrelation(key state.Key) (cid, stored string) {
	b := make([]byte, len(key)+16)
	copy(b, key[:])
	if _, err := rand.Read(b[len(key):]); err != nil {
		panic("authsession: crypto/rand failed: " + err.Error())
	}
	cid = base64.RawURLEncoding.EncodeToString(b)
	return cid, hashCorrelation(cid)
}

func hashCorrelation(cid string) string {
	sum := sha256.Sum256([]byte(cid))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// correlationKey returns the session key carried in a correlationId.
func correlationKey(cid string) (state.Key, bool) {
	var k state.Key
	if len(cid) > 100 {
		return k, false
	}
	b, err := base64.RawURLEncoding.DecodeString(cid)
	if err != nil || len(b) != len(k)+16 {
		return k, false
	}
	copy(k[:], b)
	return k, true
}

// newNonce returns a fresh nonce and its hash.
func newNonce() (string, []byte) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic("authsession: crypto/rand failed: " + err.Error())
	}
	n := base64.RawURLEncoding.EncodeToString(b)
	return n, nonceHash(n)
}

func nonceHash(n string) []byte {
	sum := sha256.Sum256([]byte(n))
	return sum[:]
}

func ctEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// storeFail answers an error of a store call.
func (a *Authn) storeFail(w http.ResponseWriter, asXML bool, op string, err error) {
	var be *state.BlockedError
	switch {
	case IsDirectoryFault(err):
		a.Env.Logger.Error("identity store failed", zap.String("op", op), zap.Error(err))
		storeDown(w)
		a.fail(w, asXML, http.StatusServiceUnavailable, authnCodeStore, "identity store unavailable", "")
	case errors.As(err, &be):
		a.fail(w, asXML, http.StatusBadRequest, authnCodeBlocked, state.ReasonTooManyAttempts, state.StatusChallengeBlocked)
	case isTimeout(err):
		storeDown(w)
		a.fail(w, asXML, http.StatusServiceUnavailable, authnCodeStore, "session store did not answer in time", "")
	case errors.Is(err, state.ErrUnavailable):
		a.Env.Logger.Error("session store failed", zap.String("op", op), zap.Error(err))
		storeDown(w)
		a.fail(w, asXML, http.StatusServiceUnavailable, authnCodeStore, "session store unavailable", "")
	default:
		a.Env.Logger.Error("authn api failed", zap.String("op", op), zap.Error(err))
		a.fail(w, asXML, http.StatusInternalServerError, authnCodeStore, "internal error", "")
	}
}
