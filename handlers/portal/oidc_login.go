package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// oidcLogin starts a sign-in at the provider: a pending record bound to
// the browser by a cookie, then the redirect to the provider's
// authorization endpoint with state, nonce and the PKCE challenge.
func (p *Portal) oidcLogin(w http.ResponseWriter, r *http.Request) {
	o := p.provider(r.PathValue("name"))
	if o == nil {
		p.fail(w, r, http.StatusNotFound, "This sign-in provider does not exist.")
		return
	}
	now := p.Env.Time()
	d, err := o.discover(r.Context(), now)
	if err != nil {
		p.Env.Logger.Error("oidc sign-in: provider unavailable", zap.String("provider", o.Name), zap.Error(err))
		p.fail(w, r, http.StatusServiceUnavailable, "Signing in with "+o.title()+" is unavailable right now. Please try again in a moment.")
		return
	}
	// A sign-in started counts as an attempt of the client IP until it
	// completes: abandoned or refused ones are its failures, so that one
	// client cannot fill the store with pending sign-ins.
	res, ok := p.reserve(w, r, now, ipKey(p.clientIP(r)))
	if !ok {
		return
	}
	st, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	cookie := state.NewID()
	redirectURI := p.callbackURL(r, o)
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	pending := p.newPending(cookie, o, hashToken(st), nonce, verifier, redirectURI, target(r), now)
	pending.UserAttributes["oidc_res_key"] = res.Keys[0]
	pending.UserAttributes["oidc_res_at"] = res.At.Format(time.RFC3339Nano)
	pending.UserAttributes["oidc_res_member"] = res.Member
	reauth := r.URL.Query().Get("reauth") == "1"
	if reauth {
		pending.UserAttributes["oidc_reauth"] = "1"
	}
	if err := p.Env.Store.Create(ctx, pending); err != nil {
		p.Limiter.Release(r.Context(), res)
		p.storeFailed(w, r, "oidc pending", err)
		return
	}
	http.SetCookie(w, p.pendingCookie(cookie, int(pendingLifetime/time.Second)))
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if reauth {
		// A gate asked for a fresh sign-in: the provider is asked to
		// authenticate the user again rather than reuse its own session;
		// max_age makes auth_time a required claim, which the callback
		// checks (a provider may ignore prompt).
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0"))
	}
	u := o.oauth(d, redirectURI).AuthCodeURL(st, opts...)
	http.Redirect(w, r, u, http.StatusFound)
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("authsession: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// hashToken returns the SHA-256 of t, base64url: what the pending record
// keeps of the state.
func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// oidcRefusal is a sign-in the callback refuses: the status and message
// shown, the reason logged and emitted.
type oidcRefusal struct {
	status int
	msg    string
	reason string
	err    error
}

// oidcCallback completes a sign-in: the pending record named by the
// browser's cookie is taken (deleted: a callback works once), the state
// checked, the code exchanged with the PKCE verifier, the ID token
// verified (signature, issuer, audience, expiry, nonce, azp), then the
// session opened under a new id.
func (p *Portal) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := p.provider(r.PathValue("name"))
	if o == nil {
		p.fail(w, r, http.StatusNotFound, "This sign-in provider does not exist.")
		return
	}
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	pending, ref := p.takePending(ctx, w, r, o)
	if ref == nil {
		var u oidcUser
		u, ref = p.exchange(r, o, pending)
		if ref == nil {
			releasePending(r.Context(), p.Limiter, pending)
			// The exchange may have used up the first store deadline.
			sctx, scancel := p.Env.StoreContext(r)
			defer scancel()
			p.openOIDCSession(sctx, w, r, o, u, pending.UserAttributes["oidc_target"], pending.UserAttributes["oidc_reauth"] == "1")
			return
		}
	}
	p.Env.Logger.Info("oidc sign-in refused", zap.String("provider", o.Name), zap.String("reason", ref.reason),
		zap.String("client_ip", p.clientIP(r)), zap.NamedError("detail", ref.err))
	if ref.status != http.StatusServiceUnavailable {
		p.Env.Emit(r.Context(), handlers.Event{
			Name: handlers.EventLoginFailed, Family: "oidc", Factor: FactorOIDCPrefix + o.Name,
			Reason: ref.reason, ClientIP: p.clientIP(r),
		})
	}
	p.fail(w, r, ref.status, ref.msg)
}

// releasePending gives back the attempt counted when the sign-in
// started (it succeeded).
func releasePending(ctx context.Context, l FailureCounter, pending *state.Session) {
	a := pending.UserAttributes
	at, err := time.Parse(time.RFC3339Nano, a["oidc_res_at"])
	if err != nil || a["oidc_res_key"] == "" {
		return
	}
	l.Release(ctx, Reservation{Keys: []string{a["oidc_res_key"]}, At: at, Member: a["oidc_res_member"]})
}

// takePending deletes and returns the pending record of the browser's
// cookie, after checking the provider's answer: a state that matches, no
// error, a code.
func (p *Portal) takePending(ctx context.Context, w http.ResponseWriter, r *http.Request, o *OIDCProvider) (*state.Session, *oidcRefusal) {
	q := r.URL.Query()
	var pending *state.Session
	c, err := r.Cookie(p.pendingCookie("", 0).Name)
	if err == nil && state.ValidateID(c.Value) == nil {
		pending, err = p.Env.Store.Delete(ctx, state.KeyOf(c.Value))
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			return nil, &oidcRefusal{http.StatusServiceUnavailable, "The sign-in service is unavailable right now. Please try again in a moment.", "store", err}
		}
	}
	http.SetCookie(w, p.pendingCookie("", -1))
	if pending == nil || pending.UserAttributes["oidc_pending"] != o.Name {
		return nil, &oidcRefusal{http.StatusBadRequest, "This sign-in has expired or was already used. Please start again.", "no_pending", nil}
	}
	got := hashToken(q.Get("state"))
	if q.Get("state") == "" || subtle.ConstantTimeCompare([]byte(got), []byte(pending.UserAttributes["oidc_state"])) != 1 {
		return nil, &oidcRefusal{http.StatusBadRequest, "This sign-in does not match the one this browser started. Please start again.", "state", nil}
	}
	if e := q.Get("error"); e != "" {
		// The provider's own error, for the sign-in this browser started
		// (the state matched): shown with its description, cut short
		// (the page escapes both).
		if len(e) > 64 || strings.Trim(e, "abcdefghijklmnopqrstuvwxyz_") != "" {
			e = "error"
		}
		desc := q.Get("error_description")
		if len(desc) > 200 {
			desc = strings.ToValidUTF8(desc[:200], "")
		}
		msg := "The sign-in at " + o.title() + " did not succeed (" + e + ")."
		if desc != "" {
			msg += " " + desc
		}
		return nil, &oidcRefusal{http.StatusUnauthorized, msg, "provider_error", errors.New(e + ": " + desc)}
	}
	if q.Get("code") == "" {
		return nil, &oidcRefusal{http.StatusBadRequest, "The provider's answer has no code. Please start again.", "no_code", nil}
	}
	return pending, nil
}

// authTimeSkew is how much earlier than the start of a fresh sign-in the
// provider's auth_time may be: the two clocks differ a little.
const authTimeSkew = time.Minute

// oidcUser is what a verified ID token says of the user.
type oidcUser struct {
	sub, sid, id, login, mail string
	mailVerified              bool
	groups                    []string
}

// exchange trades the code for tokens and verifies the ID token.
func (p *Portal) exchange(r *http.Request, o *OIDCProvider, pending *state.Session) (oidcUser, *oidcRefusal) {
	now := p.Env.Time()
	d, err := o.discover(r.Context(), now)
	if err != nil {
		return oidcUser{}, &oidcRefusal{http.StatusServiceUnavailable, "Signing in with " + o.title() + " is unavailable right now. Please try again in a moment.", "discovery", err}
	}
	ctx, cancel := context.WithTimeout(o.ctx(r.Context()), o.timeout())
	defer cancel()
	a := pending.UserAttributes
	tok, err := o.oauth(d, a["oidc_redirect_uri"]).Exchange(ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(a["oidc_pkce"]))
	if err != nil {
		return oidcUser{}, &oidcRefusal{http.StatusBadGateway, "The sign-in could not be completed with " + o.title() + ". Please start again.", "code_exchange", exchangeError(err)}
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return oidcUser{}, &oidcRefusal{http.StatusBadGateway, "The provider did not return an ID token. Please start again.", "no_id_token", nil}
	}
	idt, err := d.verifier(o, p.Env.Now).Verify(ctx, raw)
	bad := func(reason string, err error) (oidcUser, *oidcRefusal) {
		return oidcUser{}, &oidcRefusal{http.StatusUnauthorized, "The identity provider's answer could not be verified. Please start again.", reason, err}
	}
	if err != nil {
		return bad("id_token", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(a["oidc_nonce"])) != 1 {
		return bad("nonce", errors.New("the ID token's nonce is not the one sent"))
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return bad("claims", err)
	}
	azp, _ := claims["azp"].(string)
	if (len(idt.Audience) > 1 && azp == "") || (azp != "" && azp != o.ClientID) {
		return bad("azp", errors.New("the ID token's azp is not our client"))
	}
	if a["oidc_reauth"] == "1" {
		// A fresh sign-in: the provider must have authenticated the user
		// during it, not reused an older sign-in of its own.
		at, ok := claims["auth_time"].(float64)
		if !ok || time.Unix(int64(at), 0).Before(pending.CreateTime.Add(-authTimeSkew)) {
			return oidcUser{}, &oidcRefusal{http.StatusUnauthorized, o.title() + " did not ask you to sign in again, which this page needs. Please start again.", "stale_auth_time", nil}
		}
	}
	u := oidcUser{sub: idt.Subject}
	u.sid, _ = claims["sid"].(string)
	u.id = claimString(claims, o.claim(o.Claims.ID, "sub"))
	u.mail = claimString(claims, o.claim(o.Claims.Mail, "email"))
	u.mailVerified, _ = claims["email_verified"].(bool)
	u.login = claimString(claims, o.claim(o.Claims.Login, "preferred_username"))
	if u.login == "" {
		u.login = u.mail
	}
	if u.login == "" {
		u.login = u.id
	}
	u.groups = claimStrings(claims, o.claim(o.Claims.Group, "groups"))
	if u.id == "" || u.sub == "" || state.ValidateUserName(u.id) != nil || state.ValidateUserName(u.login) != nil ||
		len(u.id) > maxLoginLen || len(u.login) > maxLoginLen {
		return bad("claims", errors.New("the ID token has no usable user id or login"))
	}
	if len(o.AllowedGroups) > 0 && !slices.ContainsFunc(u.groups, func(g string) bool { return slices.Contains(o.AllowedGroups, g) }) {
		return oidcUser{}, &oidcRefusal{http.StatusForbidden, "Your account is not in a group allowed to sign in here.", "group", nil}
	}
	return u, nil
}

// exchangeError returns err without what the provider answered beyond its
// error code (the body may hold tokens on odd providers).
func exchangeError(err error) error {
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		return errors.New("token endpoint answered " + re.Response.Status + " " + re.ErrorCode)
	}
	return err
}

// claimString returns the claim c as a string ("" if absent or not one).
func claimString(claims map[string]any, c string) string {
	switch v := claims[c].(type) {
	case string:
		return strings.TrimSpace(v)
	case json.Number:
		return v.String()
	}
	return ""
}

// claimStrings returns the claim c as a list of strings (a string is a
// list of one). Values that cannot be kept in the comma-separated groups
// attribute (a comma, a control character) are dropped.
func claimStrings(claims map[string]any, c string) []string {
	var vs []string
	switch v := claims[c].(type) {
	case string:
		vs = []string{v}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				vs = append(vs, s)
			}
		}
	}
	out := vs[:0]
	for _, g := range vs {
		if g != "" && !strings.Contains(g, ",") && state.ValidateUserName(g) == nil && len(g) <= maxLoginLen {
			out = append(out, g)
		}
	}
	return out
}
