package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
)

// errOtherUser: the named session belongs to another user.
var errOtherUser = errors.New("the session belongs to another user")

// post starts an authentication: POST /authn/v1.
func (a *Authn) post(w http.ResponseWriter, r *http.Request) {
	var in authnRequest
	outXML, ok := a.readRequest(w, r, "AuthnRequest", &in)
	if !ok {
		return
	}
	if in.ClientInfo == nil || in.ClientInfo.ClientID == "" || in.ClientInfo.ClientSecret == "" {
		a.fail(w, outXML, http.StatusBadRequest, authnCodeBadRequest, "clientInfo.clientId and clientInfo.clientSecret are required", "")
		return
	}
	if !a.Clients.Check(string(in.ClientInfo.ClientID), string(in.ClientInfo.ClientSecret)) {
		a.fail(w, outXML, http.StatusUnauthorized, authnCodeBadClient, "unknown clientId or wrong clientSecret", "")
		return
	}
	ttl := defaultAuthnTTL
	maxTTL := a.MaxTTL
	if maxTTL <= 0 {
		maxTTL = time.Hour
	}
	if in.TimeToLiveInSec != nil {
		ttl = time.Duration(*in.TimeToLiveInSec) * time.Second
		if ttl <= 0 || ttl > maxTTL {
			a.fail(w, outXML, http.StatusBadRequest, authnCodeBadRequest,
				"timeToLiveInSec must be between 1 and "+strconv.Itoa(int(maxTTL/time.Second)), "")
			return
		}
	}
	var userID, group string
	if in.UserInfo != nil {
		userID = strings.TrimSpace(string(in.UserInfo.UserID))
		if len(in.UserInfo.Groups) > 0 {
			group = string(in.UserInfo.Groups[0])
		}
	}
	if len(userID) > 256 {
		a.fail(w, outXML, http.StatusBadRequest, authnCodeBadRequest, "userInfo.userId is too long", "")
		return
	}
	var userKey string
	if userID != "" {
		k, err := keyOrFault(r.Context(), a.Users, userID)
		if IsDirectoryFault(err) {
			a.storeFail(w, outXML, "user", err)
			return
		}
		if err != nil {
			a.fail(w, outXML, http.StatusBadRequest, authnCodeBadRequest, "userInfo.userId: "+err.Error(), "")
			return
		}
		userKey = k
	}
	id := string(in.SessionID)
	named := id != ""
	if named && state.ValidateID(id) != nil {
		a.fail(w, outXML, http.StatusBadRequest, authnCodeBadRequest, "sessionId is not a valid session id", "")
		return
	}
	if !named {
		id = state.NewID()
	}
	var ip string
	if in.Context != nil {
		ip = string(in.Context.IPAddress)
	}
	key := state.KeyOf(id)
	cid, cidHash := newCorrelation(key)
	nonce, nh := newNonce()
	now := a.Env.Time()
	var user authnUser
	apply := func(s *state.Session) error {
		uid := userID
		if uid == "" {
			uid = s.UserID
		} else if s.UserID != "" && s.UserID != userKey {
			return errOtherUser
		}
		user = authnUser{}
		st := state.StatusPendingIdentification
		if uid != "" {
			var err error
			if user, err = a.resolveUser(r.Context(), uid, group); err != nil {
				return err
			}
			s.UserID = user.id
			if user.store != "" {
				s.IDStoreName = user.store
			}
			s.LoginName, s.GroupName = user.login, user.group
			s.SetDisplayName(user.name)
			st = state.StatusMissingRegistration
			if len(user.factors) > 0 {
				st = state.StatusPendingVerification
			}
		}
		if ip != "" && s.ClientIP == "" {
			s.ClientIP = ip
		}
		if s.Status != state.StatusPendingIdentification || st != state.StatusPendingIdentification {
			if err := s.SetStatus(st, now, "", 0); err != nil {
				return err
			}
		}
		// now is whole seconds (Env.Time): one more second makes the
		// challenge last at least ttl from this request, at most ttl + 1 s.
		s.Challenge = &state.Challenge{CorrelationID: cidHash, NonceHash: nh, Expiry: now.Add(ttl + time.Second)}
		s.UpdateTime = now
		return nil
	}

	ctx, cancel := a.Env.StoreContext(r)
	defer cancel()
	var s *state.Session
	var err error
	if named {
		s, err = a.Env.UpdateSession(ctx, "authn", "", key, apply)
	} else {
		err = state.ErrNotFound
	}
	if errors.Is(err, state.ErrNotFound) {
		s = a.Env.NewSession(id, now)
		if err = apply(s); err == nil {
			err = a.Env.CreateSessionIn(ctx, "authn", s)
		}
		if errors.Is(err, state.ErrExists) && named {
			s, err = a.Env.UpdateSession(ctx, "authn", "", key, apply)
		}
	}
	switch {
	case errors.Is(err, errOtherUser):
		a.fail(w, outXML, http.StatusBadRequest, authnCodeBadRequest, err.Error(), "")
		return
	case errors.Is(err, state.ErrTransition):
		// E.g. an authenticated session of a user without factors: it
		// cannot go back to "missing registration".
		a.fail(w, outXML, http.StatusBadRequest, authnCodeBadRequest, "the session cannot start a challenge: "+err.Error(), "")
		return
	case err != nil:
		a.storeFail(w, outXML, "start", err)
		return
	}
	a.Env.Logger.Info("authn challenge started", zap.String("session", key.Short()),
		zap.String("status", string(s.Status)), zap.Int("factors", len(user.factors)))
	writeAuthn(w, http.StatusOK, outXML, updateAuthnResponse{
		Status:        authnStatus{Code: "0", Status: string(s.Status)},
		CorrelationID: cid,
		Nonce:         nonce,
		SessionID:     id,
		InitContext: &authnInitContext{
			ChallengeInfo:    a.challengeInfo(&user),
			Cookies:          []authnKeyValue{},
			FactorAttributes: []authnKeyValue{},
			RequestParams:    []authnKeyValue{},
		},
	})
}
