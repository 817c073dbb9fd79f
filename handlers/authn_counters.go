package handlers

import (
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
)

// authnCountersPath is the administrator's reset of a user's challenge
// counters, under each of the family's prefixes:
//
//	DELETE /authn/v1/users/{userId}/counters[?factor=ChallengeOMATOTP&factor=…]
//
// It forgets the wrong answers counted for the user's factors (every factor
// without a factor parameter) and lifts their blocks; sessions already
// blocked stay blocked, a new challenge may start at once.
const authnCountersPath = "/users/{userId}/counters"

// resetCounters serves the counter reset: 200 with an AuthnAPIResponse of
// code "0", or the family's error answer.
func (a *Authn) resetCounters(w http.ResponseWriter, r *http.Request) {
	out, merr := answerMedia(r, authnMedia...)
	outXML := out == mediaXML
	if !a.authorize(w, r, outXML) {
		return
	}
	if merr != nil {
		a.fail(w, outXML, merr.Status, authnCodeBadRequest, merr.Msg, "")
		return
	}
	id := strings.TrimSpace(r.PathValue("userId"))
	if id == "" || len(id) > 256 {
		a.fail(w, outXML, http.StatusBadRequest, authnCodeBadRequest, "userId must be 1 to 256 characters", "")
		return
	}
	factors := r.URL.Query()["factor"]
	known := append(slices.Clone(state.Factors), state.FactorOTP)
	for _, f := range factors {
		if !slices.Contains(known, f) {
			a.fail(w, outXML, http.StatusBadRequest, authnCodeUnknownFac, "unknown factor; known factors are "+strings.Join(known, ", "), "")
			return
		}
	}
	ctx, cancel := a.Env.StoreContext(r)
	defer cancel()
	if err := ClearAttempts(ctx, a.Env.Store, UserKey(ctx, a.Users, id), factors...); err != nil {
		a.storeFail(w, outXML, "reset counters", err)
		return
	}
	a.Env.Logger.Info("authn challenge counters reset", zap.Strings("factors", factors))
	writeAuthn(w, http.StatusOK, outXML, authnAPIResponse{Status: authnStatus{Code: "0", Message: "challenge counters reset"}})
}
