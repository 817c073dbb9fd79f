package portal

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// The account security page ({prefix}/account) and passkeys and recovery
// codes as second factors on the factor page.
//
//	GET  /account                    the user's passkeys, recovery codes and
//	                                 trusted browsers
//	POST /account/passkey/options    (JSON) starts a passkey registration
//	POST /account/passkey            finishes it (step-up)
//	POST /account/passkey/remove     removes a passkey (step-up)
//	POST /account/recovery           makes a new set of recovery codes,
//	                                 shown once (step-up)
//	POST /account/devices/forget     forgets trusted browsers
//	POST /otp/passkey/options        (JSON) starts a passkey assertion for
//	                                 the pre-auth session
//	GET  /passkey.js                 the pages' script (navigator.credentials)

// StepUpWindow is how long after a second factor a change of the
// account's factors needs no password.
const StepUpWindow = 5 * time.Minute

// Factor keys of the portal for passkeys and recovery codes, and the
// factor a recovery code is recorded and counted as.
const (
	factorKeyPasskey  = "passkey"
	factorKeyRecovery = "recovery"
	FactorRecovery    = "RecoveryCode"
)

//go:embed static/passkey.js
var passkeyJS []byte

// registerAccount mounts the account page and the passkey endpoints.
func (p *Portal) registerAccount(m *http.ServeMux) {
	m.HandleFunc("GET "+p.Prefix+"/account", p.account(p.accountPage))
	m.HandleFunc("POST "+p.Prefix+"/account/passkey/options", p.form(p.account(p.passkeyRegisterOptions)))
	m.HandleFunc("POST "+p.Prefix+"/account/passkey", p.form(p.account(p.passkeyRegister)))
	m.HandleFunc("POST "+p.Prefix+"/account/passkey/remove", p.form(p.account(p.passkeyRemove)))
	m.HandleFunc("POST "+p.Prefix+"/account/recovery", p.form(p.account(p.recoveryGenerate)))
	m.HandleFunc("POST "+p.Prefix+"/account/devices/forget", p.form(p.account(p.devicesForget)))
	m.HandleFunc("POST "+p.Prefix+"/otp/passkey/options", p.form(p.passkeyLoginOptions))
	m.HandleFunc("POST "+p.Prefix+"/login/passkey/options", p.form(p.passwordlessOptions))
	m.HandleFunc("POST "+p.Prefix+"/login/passkey", p.form(p.passwordlessSignIn))
	p.registerAccountTOTP(m)
	m.HandleFunc("GET "+p.Prefix+"/passkey.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(passkeyJS)
	})
}

type passkeyRow struct {
	ID       string
	Name     string
	Created  time.Time
	LastUsed time.Time
}

type deviceRow struct {
	Index int
	Added time.Time
	Until time.Time
}

// accountData is what the account page shows.
type accountData struct {
	Passkeys      []passkeyRow
	PasskeysOn    bool
	RecoveryLeft  int
	RecoveryAt    time.Time
	RecoveryCodes []string
	Devices       []deviceRow
	// TOTP: the user has an authenticator app; TOTPPending a new secret
	// waiting for its confirmation.
	TOTP        bool
	TOTPPending *totpPending
	// StepUp is set when a change needs the password (no factor passed
	// in the last StepUpWindow).
	StepUp bool
}

// accountHandler serves a request of the account page for the browser's
// authenticated session s and its user u, with ctx bounded for the store.
type accountHandler func(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User)

// account adapts h to a handler: the store context, then the session and
// its user (or the sign-in page, or a 503) before h runs.
func (p *Portal) account(h accountHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := p.Env.StoreContext(r)
		defer cancel()
		s, u, ok := p.accountUser(w, r, ctx)
		if !ok {
			return
		}
		h(w, r, ctx, s, u)
	}
}

// accountUser returns the browser's authenticated session and its user,
// or has answered (sign-in, 503).
func (p *Portal) accountUser(w http.ResponseWriter, r *http.Request, ctx context.Context) (*state.Session, state.User, bool) {
	s, err := p.current(ctx, r)
	if err != nil {
		p.storeFailed(w, r, "get", err)
		return nil, state.User{}, false
	}
	if s == nil || !s.Authenticated(p.Env.Now()) {
		http.Redirect(w, r, handlers.LoginRedirect(p.Prefix+"/login", p.Prefix+"/account"), http.StatusSeeOther)
		return nil, state.User{}, false
	}
	u, ok, err := p.sessionUser(ctx, s)
	if err != nil {
		p.storeFailed(w, r, "lookup", err)
		return nil, state.User{}, false
	}
	if !ok || u.ID != s.UserID {
		http.Redirect(w, r, handlers.LoginRedirect(p.Prefix+"/login", p.Prefix+"/account"), http.StatusSeeOther)
		return nil, state.User{}, false
	}
	return s, u, true
}

// userState returns the per-user state of u (empty when there is none).
func (p *Portal) userState(ctx context.Context, u state.User) (*state.UserState, error) {
	us, err := p.Env.Store.GetUser(ctx, handlers.UserKey(ctx, p.Users, u.ID))
	if errors.Is(err, state.ErrNotFound) {
		return &state.UserState{}, nil
	}
	return us, err
}

func (p *Portal) accountPage(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User) {
	notice := map[string]string{
		"passkey-added": "The passkey was added.", "passkey-removed": "The passkey was removed.",
		"devices-forgotten": "Those browsers are no longer trusted.",
		"totp-enrolled":     "Your authenticator app is set up.", "totp-replaced": "Your authenticator app was replaced: the old one no longer works.",
		"totp-removed": "Your authenticator app was removed.",
	}[r.URL.Query().Get("done")]
	p.renderAccount(w, r, ctx, http.StatusOK, s, u, notice, "", nil)
}

// renderAccount renders the account page; codes are recovery codes just
// made (shown this once).
func (p *Portal) renderAccount(w http.ResponseWriter, r *http.Request, ctx context.Context, status int, s *state.Session, u state.User, notice, msg string, codes []string) {
	p.renderAccountWith(w, r, ctx, status, s, u, notice, msg, codes, nil)
}

// renderAccountWith is renderAccount with more set by more (if not nil).
func (p *Portal) renderAccountWith(w http.ResponseWriter, r *http.Request, ctx context.Context, status int, s *state.Session, u state.User, notice, msg string, codes []string, more func(*accountData)) {
	us, err := p.userState(ctx, u)
	if err != nil {
		p.storeFailed(w, r, "get user", err)
		return
	}
	now := p.Env.Now()
	a := &accountData{
		PasskeysOn: p.Passkeys != nil, RecoveryLeft: len(us.Recovery), RecoveryAt: us.RecoveryAt,
		RecoveryCodes: codes, StepUp: !p.recentFactor(s, now),
		TOTP: u.HasFactor(state.FactorTOTP) && u.TOTPSecret != "",
	}
	if more != nil {
		more(a)
	}
	for _, pk := range us.Passkeys {
		a.Passkeys = append(a.Passkeys, passkeyRow{
			ID: base64.RawURLEncoding.EncodeToString(pk.ID), Name: pk.Name, Created: pk.Created, LastUsed: pk.LastUsed,
		})
	}
	i := 0
	for _, dv := range us.Devices {
		if strings.HasPrefix(dv.ID, devicePrefix) && now.Before(dv.Until) {
			i++
			a.Devices = append(a.Devices, deviceRow{Index: i, Added: dv.Added, Until: dv.Until})
		}
	}
	p.render(w, r, status, "account", pageData{Login: u.Login, Name: u.Name, Notice: notice, Error: msg, Account: a})
}

// recentFactor reports whether s passed a second factor within
// StepUpWindow of now.
func (p *Portal) recentFactor(s *state.Session, now time.Time) bool {
	if s.AuthTime.IsZero() || now.Sub(s.AuthTime) >= StepUpWindow {
		return false
	}
	for _, f := range s.Factors {
		if f != FactorTrustedDevice {
			return true
		}
	}
	return false
}

// stepUp checks that the change may be made: a factor passed within
// StepUpWindow, or the current password (form field password), counted
// like a sign-in attempt. It answers refusals itself.
func (p *Portal) stepUp(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User) bool {
	now := p.Env.Now()
	if p.recentFactor(s, now) {
		return true
	}
	password := r.PostFormValue("password")
	if password == "" || len(password) > maxLoginLen {
		p.renderAccount(w, r, ctx, http.StatusForbidden, s, u, "", "Enter your current password to make this change.", nil)
		return false
	}
	res, ok := p.reserve(w, r, now, ipKey(p.clientIP(r)), userKey(ctx, p.Users, u.Login))
	if !ok {
		return false
	}
	_, good, err := p.Users.CheckPassword(ctx, u.Login, password)
	switch {
	case err != nil:
		p.Limiter.Release(ctx, res)
		p.storeFailed(w, r, "check password", err)
		return false
	case !good:
		p.renderAccount(w, r, ctx, http.StatusForbidden, s, u, "", "That password is not right.", nil)
		return false
	}
	p.Limiter.Release(ctx, res)
	return true
}

// factorChanged ends a change of the account page that enrolled or removed
// factor: the event (name), the user's notice (change), and the account
// page again with done as its confirmation.
func (p *Portal) factorChanged(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User,
	name, factor, change, done string,
) {
	p.emitFactor(ctx, r, name, s, u, factor)
	p.notify(r, u, change)
	http.Redirect(w, r, p.Prefix+"/account?done="+done, http.StatusSeeOther)
}

// emit sends a factor event for the signed-in user.
func (p *Portal) emitFactor(ctx context.Context, r *http.Request, name string, s *state.Session, u state.User, factor string) {
	p.Env.Emit(ctx, handlers.Event{
		Name: name, UserKey: handlers.UserKey(ctx, p.Users, u.ID), Login: u.Login, Session: s.Key,
		Family: "portal", Factor: factor, ClientIP: p.clientIP(r),
	})
}

// writeJSON answers the script's requests.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ceremonyAnswer is the JSON answer of the options endpoints.
type ceremonyAnswer struct {
	Ceremony string          `json:"ceremony,omitempty"`
	Options  json.RawMessage `json:"options,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// sessionBinding binds a ceremony to the browser's session.
func sessionBinding(s *state.Session) string { return handlers.CeremonyBinding(string(s.Key[:])) }

// passkeyRegisterOptions starts the registration of a passkey named by
// the form field name.
func (p *Portal) passkeyRegisterOptions(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User) {
	if p.Passkeys == nil {
		writeJSON(w, http.StatusNotFound, ceremonyAnswer{Error: "passkeys are not enabled"})
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		name = "Passkey"
	}
	if len(name) > state.MaxPasskeyName {
		writeJSON(w, http.StatusBadRequest, ceremonyAnswer{Error: "the name is too long"})
		return
	}
	id := handlers.NewCeremonyID()
	var opts []byte
	ukey := handlers.UserKey(ctx, p.Users, u.ID)
	_, err := p.Env.Store.UpdateUser(ctx, ukey, func(us *state.UserState) error {
		o, c, err := p.Passkeys.BeginRegistration(ukey, u.Login, us, name, sessionBinding(s))
		if err != nil {
			return err
		}
		opts = o
		us.StartCeremony(id, c, p.Env.Now())
		return nil
	})
	switch {
	case errors.Is(err, state.ErrTooManyPasskeys):
		writeJSON(w, http.StatusConflict, ceremonyAnswer{Error: err.Error()})
		return
	case err != nil:
		p.Env.Logger.Error("portal passkey registration could not start", zap.Error(err))
		writeJSON(w, http.StatusServiceUnavailable, ceremonyAnswer{Error: "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, ceremonyAnswer{Ceremony: id, Options: opts})
}

// passkeyRegister finishes a registration: form fields ceremony and
// credential (the PublicKeyCredential JSON).
func (p *Portal) passkeyRegister(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User) {
	if p.Passkeys == nil {
		p.fail(w, r, http.StatusNotFound, "Passkeys are not enabled here.")
		return
	}
	if !p.stepUp(w, r, ctx, s, u) {
		return
	}
	now := p.Env.Now()
	ukey := handlers.UserKey(ctx, p.Users, u.ID)
	var why error
	_, err := p.Env.Store.UpdateUser(ctx, ukey, func(us *state.UserState) error {
		_, why = p.Passkeys.FinishRegistration(ukey, u.Login, us, r.PostFormValue("ceremony"), sessionBinding(s),
			[]byte(r.PostFormValue("credential")), now)
		return nil // the ceremony is spent either way
	})
	if err != nil {
		p.storeFailed(w, r, "passkey register", err)
		return
	}
	if why != nil {
		p.Env.Logger.Info("portal passkey registration refused", zap.String("session", s.Key.Short()), zap.String("why", why.Error()))
		p.renderAccount(w, r, ctx, http.StatusBadRequest, s, u, "", "The passkey could not be added: "+why.Error(), nil)
		return
	}
	p.Env.Logger.Info("portal passkey added", zap.String("session", s.Key.Short()))
	p.factorChanged(w, r, ctx, s, u, handlers.EventFactorEnrolled, state.FactorFIDO2, noticePasskeyAdded, "passkey-added")
}

// passkeyRemove removes the passkey of form field id (base64url).
func (p *Portal) passkeyRemove(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User) {
	id, err := base64.RawURLEncoding.DecodeString(r.PostFormValue("id"))
	if err != nil || len(id) == 0 {
		p.renderAccount(w, r, ctx, http.StatusBadRequest, s, u, "", "No such passkey.", nil)
		return
	}
	if !p.stepUp(w, r, ctx, s, u) {
		return
	}
	_, err = p.Env.Store.UpdateUser(ctx, handlers.UserKey(ctx, p.Users, u.ID), func(us *state.UserState) error {
		if !us.RemovePasskey(id) {
			return state.ErrUnknownPasskey
		}
		return nil
	})
	switch {
	case errors.Is(err, state.ErrUnknownPasskey):
		p.renderAccount(w, r, ctx, http.StatusBadRequest, s, u, "", "No such passkey.", nil)
		return
	case err != nil:
		p.storeFailed(w, r, "passkey remove", err)
		return
	}
	p.Env.Logger.Info("portal passkey removed", zap.String("session", s.Key.Short()))
	p.factorChanged(w, r, ctx, s, u, handlers.EventFactorRemoved, state.FactorFIDO2, noticePasskeyRemoved, "passkey-removed")
}

// recoveryGenerate makes a new set of recovery codes (revoking the old)
// and shows them this once.
func (p *Portal) recoveryGenerate(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User) {
	if !p.stepUp(w, r, ctx, s, u) {
		return
	}
	codes, hashes := state.NewRecoveryCodes()
	_, err := p.Env.Store.UpdateUser(ctx, handlers.UserKey(ctx, p.Users, u.ID), func(us *state.UserState) error {
		us.SetRecoveryCodes(hashes, p.Env.Now())
		return nil
	})
	if err != nil {
		p.storeFailed(w, r, "recovery codes", err)
		return
	}
	p.Env.Logger.Info("portal recovery codes made", zap.String("session", s.Key.Short()))
	p.emitFactor(ctx, r, handlers.EventFactorEnrolled, s, u, FactorRecovery)
	p.notify(r, u, noticeRecoveryCodes)
	p.renderAccount(w, r, ctx, http.StatusOK, s, u, "Your new recovery codes are below. Keep them somewhere safe: they are shown only this once, and the old ones no longer work.", "", codes)
}

// devicesForget forgets one trusted browser (form field index, as listed)
// or, with all=1, every one.
func (p *Portal) devicesForget(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User) {
	all := r.PostFormValue("all") == "1"
	index, _ := strconv.Atoi(r.PostFormValue("index"))
	now := p.Env.Now()
	forgotten := 0
	_, err := p.Env.Store.UpdateUser(ctx, handlers.UserKey(ctx, p.Users, u.ID), func(us *state.UserState) error {
		kept := us.Devices[:0:0]
		i := 0
		forgotten = 0
		for _, dv := range us.Devices {
			if strings.HasPrefix(dv.ID, devicePrefix) && now.Before(dv.Until) {
				i++
				if all || i == index {
					forgotten++
					continue
				}
			}
			kept = append(kept, dv)
		}
		us.Devices = kept
		return nil
	})
	if err != nil {
		p.storeFailed(w, r, "forget devices", err)
		return
	}
	p.Env.Logger.Info("portal trusted browsers forgotten", zap.String("session", s.Key.Short()))
	switch {
	case forgotten > 1:
		p.notify(r, u, noticeBrowsersForgotten)
	case forgotten == 1:
		p.notify(r, u, noticeBrowserForgotten)
	}
	http.Redirect(w, r, p.Prefix+"/account?done=devices-forgotten", http.StatusSeeOther)
}

// passkeyLoginOptions starts a passkey assertion for the pre-auth session.
func (p *Portal) passkeyLoginOptions(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	s, u, ok := p.preAuth(w, r, ctx)
	if !ok {
		return
	}
	if p.Passkeys == nil {
		writeJSON(w, http.StatusNotFound, ceremonyAnswer{Error: "passkeys are not enabled"})
		return
	}
	id := handlers.NewCeremonyID()
	var opts []byte
	ukey := handlers.UserKey(ctx, p.Users, u.ID)
	_, err := p.Env.Store.UpdateUser(ctx, ukey, func(us *state.UserState) error {
		o, c, err := p.Passkeys.BeginLogin(ukey, u.Login, us, sessionBinding(s))
		if err != nil {
			return err
		}
		opts = o
		us.StartCeremony(id, c, p.Env.Now())
		return nil
	})
	switch {
	case errors.Is(err, handlers.ErrNoPasskey):
		writeJSON(w, http.StatusNotFound, ceremonyAnswer{Error: "you have no passkey"})
		return
	case err != nil:
		p.Env.Logger.Error("portal passkey sign-in could not start", zap.Error(err))
		writeJSON(w, http.StatusServiceUnavailable, ceremonyAnswer{Error: "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, ceremonyAnswer{Ceremony: id, Options: opts})
}

// registeredFactors adds to the users file's factors of u those the user
// registered here: a passkey (when passkeys are on) and recovery codes.
func (p *Portal) registeredFactors(ctx context.Context, u state.User) []factorChoice {
	fs := p.factors(u)
	us, err := p.userState(ctx, u)
	if err != nil {
		p.Env.Logger.Warn("portal could not read the user's registered factors", zap.Error(err))
		return fs
	}
	if p.Passkeys != nil && len(us.Passkeys) > 0 {
		fs = append([]factorChoice{{Key: factorKeyPasskey, Label: "Use a passkey"}}, fs...)
	}
	if len(us.Recovery) > 0 {
		fs = append(fs, factorChoice{Key: factorKeyRecovery, Label: "Use a recovery code"})
	}
	return fs
}

// checkRegistered counts and checks the answer of a passkey or recovery
// code for the user (ukey), in one update of the user's state. It returns
// whether it passed, last as ReserveAttempt does, and the block of the
// factor if it is blocked.
func (p *Portal) checkRegistered(ctx context.Context, r *http.Request, s *state.Session, ukey, factor string, now time.Time) (ok, last bool, why error, err error) {
	counted := state.FactorFIDO2
	if factor == factorKeyRecovery {
		counted = FactorRecovery
	}
	code := r.PostFormValue("code")
	_, err = p.Env.Store.UpdateUser(ctx, ukey, func(us *state.UserState) error {
		ok, why = false, nil
		var err error
		if last, err = p.OTP.ReserveAttempt(us, counted, now); err != nil {
			return err
		}
		if factor == factorKeyRecovery {
			ok = us.UseRecoveryCode(code)
		} else {
			if pa, perr := handlers.ParseAssertion([]byte(r.PostFormValue("credential"))); perr != nil {
				why = perr
			} else {
				_, why = p.Passkeys.FinishLogin(ukey, us, r.PostFormValue("ceremony"), sessionBinding(s), pa, now)
			}
			ok = why == nil
		}
		if ok {
			us.ClearAttempts(counted)
		}
		return nil
	})
	return ok, last, why, err
}

// verifyRegistered is verify for a passkey or a recovery code: the
// answer is counted for the client, the login and the user's factor
// before it is checked; on success the session is rotated and
// authenticated with ChallengeFIDO2 or RecoveryCode recorded.
func (p *Portal) verifyRegistered(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User, factor string) {
	now := p.Env.Time()
	if factor == factorKeyPasskey && p.Passkeys == nil {
		p.renderFactor(w, r, http.StatusBadRequest, s, u, "", "Choose how to confirm your sign-in.")
		return
	}
	if factor == factorKeyRecovery && (r.PostFormValue("code") == "" || len(r.PostFormValue("code")) > 64) {
		p.renderFactor(w, r, http.StatusBadRequest, s, u, factor, "Enter one of your recovery codes.")
		return
	}
	lim, ok := p.reserve(w, r, now, ipKey(p.clientIP(r)), userKey(r.Context(), p.Users, u.Login))
	if !ok {
		return
	}
	checked := false
	defer func() {
		if !checked {
			p.Limiter.Release(r.Context(), lim)
		}
	}()
	ukey := handlers.UserKey(ctx, p.Users, u.ID)
	passed, last, why, err := p.checkRegistered(ctx, r, s, ukey, factor, now)
	var userBlock time.Time
	if be, ok := errors.AsType[*state.BlockedError](err); ok {
		userBlock = be.Until
	} else if err != nil {
		p.storeFailed(w, r, "check factor", err)
		return
	}
	recorded := state.FactorFIDO2
	if factor == factorKeyRecovery {
		recorded = FactorRecovery
	}
	var res state.OTPResult
	var authed *state.Session
	// Through Env.UpdateSession, as verify does, so that a session this
	// answer blocks is reported (challenge_blocked event and metric).
	_, err = p.Env.UpdateSession(ctx, "portal", p.clientIP(r), s.Key, func(cur *state.Session) error {
		authed = nil
		c := cur.Clone()
		switch {
		case !userBlock.IsZero():
			handlers.BlockSession(c, now, userBlock)
			res = state.OTPBlocked
		case passed:
			res = state.OTPOK
			if err := p.OTP.Pass(c, recorded, now); err != nil {
				res = state.OTPBlocked
			}
		default:
			res = p.OTP.Fail(c, now)
		}
		var passed bool
		if res, passed = p.settleAnswer(cur, c, res, last, now); passed {
			authed = c
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, state.ErrNotFound) {
			http.Redirect(w, r, withTarget(p.Prefix+"/login", target(r)), http.StatusSeeOther)
			return
		}
		p.storeFailed(w, r, "verify", err)
		return
	}
	log := p.Env.Logger.With(zap.String("session", s.Key.Short()), zap.String("factor", factor))
	if res != state.OTPOK {
		checked = true // the reservation is the failure
		reason := "wrong_answer"
		switch {
		case !userBlock.IsZero():
			// The factor was blocked already: the answer was refused
			// unchecked, as verify reports it.
			reason = "blocked"
			log.Info("portal second factor refused: the factor is blocked")
		case errors.Is(why, state.ErrSignCount):
			reason = "cloned_authenticator"
			log.Warn("portal passkey refused: its signature counter went back (cloned authenticator?)")
		case why != nil:
			log.Info("portal second factor refused", zap.String("why", why.Error()))
		default:
			log.Info("portal second factor refused")
		}
		p.Env.Emit(ctx, handlers.Event{
			Name: handlers.EventLoginFailed, UserKey: ukey, Login: u.Login, Session: s.Key,
			Family: "portal", Factor: recorded, Reason: reason, ClientIP: p.clientIP(r),
		})
		if res == state.OTPBlocked {
			until := now.Add(p.OTP.BlockFor)
			if !userBlock.IsZero() {
				until = userBlock
			}
			w.Header().Set("Retry-After", handlers.RetryAfter(until, now))
			p.fail(w, r, http.StatusTooManyRequests, "Too many wrong answers. Please wait a few minutes and sign in again.")
			return
		}
		msg := "That passkey could not be checked. Please try again."
		if factor == factorKeyRecovery {
			msg = "That recovery code is not right or was already used."
		}
		p.renderFactor(w, r, http.StatusUnauthorized, s, u, factor, msg)
		return
	}
	id, err := p.rotate(ctx, s.Key, authed, now)
	if err != nil {
		p.storeFailed(w, r, "rotate", err)
		return
	}
	p.Limiter.Reset(r.Context(), userKey(r.Context(), p.Users, u.Login))
	p.setSession(w, r, id)
	if p.TrustFor > 0 && r.PostFormValue("trust") != "" {
		p.trustDevice(ctx, w, u, p.clientIP(r), now)
	}
	log.Info("portal sign-in complete", zap.String("new_session", state.KeyOf(id).Short()))
	finish(w, r, target(r))
}
