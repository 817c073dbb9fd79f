package handlers

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
)

// totpEnrollBody is the body of POST /user/totp/enroll.
type totpEnrollBody struct {
	UserID *string `json:"userId"`
}

// totpEnrollAnswer carries what an authenticator app needs. It is the one
// answer that holds a TOTP secret: the caller (a trusted backend) shows it
// to the user once.
type totpEnrollAnswer struct {
	Secret string `json:"secret"`
	URI    string `json:"uri"`
	// QRPNG is a QR code of URI, as base64 PNG.
	QRPNG string `json:"qrPng"`
}

// enrollTOTP gives the user of the users file a fresh TOTP secret, enables
// ChallengeOMATOTP and saves the file (our extension of the family).
func (o *OTPSessions) enrollTOTP(w http.ResponseWriter, r *http.Request) {
	var in totpEnrollBody
	if !readJSONAPI(w, r, &in) {
		return
	}
	if in.UserID == nil || strings.TrimSpace(*in.UserID) == "" {
		jsonAPIFail(w, http.StatusBadRequest, "bad-request", "userId is required", "/userId")
		return
	}
	users := state.UsersFileOf(o.Users)
	if done := o.enrollDirectoryTOTP(w, r, users, *in.UserID); done {
		return
	}
	if users == nil {
		jsonAPIFail(w, http.StatusNotFound, "user-not-found", "no users file is configured", "/userId")
		return
	}
	key, err := state.UserKey(users, *in.UserID)
	if err != nil {
		jsonAPIFail(w, http.StatusBadRequest, "bad-request", "userId: "+err.Error(), "/userId")
		return
	}
	u, ok := users.ByID(key)
	if !ok {
		jsonAPIFail(w, http.StatusNotFound, "user-not-found", "no such user in the users file", "/userId")
		return
	}
	e, err := o.TOTP.Enroll(u.Login, "")
	if err != nil {
		o.storeFail(w, "totp enroll", err)
		return
	}
	if err := users.SetTOTP(u.ID, e.Secret); err != nil {
		if errors.Is(err, state.ErrUserNotFound) {
			jsonAPIFail(w, http.StatusNotFound, "user-not-found", "no such user in the users file", "/userId")
			return
		}
		o.storeFail(w, "totp enroll", err)
		return
	}
	if err := users.Save(); err != nil {
		o.Env.Logger.Error("saving users file failed", zap.Error(err))
		jsonAPIFail(w, http.StatusInternalServerError, "internal-error", "the users file could not be saved", "")
		return
	}
	o.Env.Logger.Info("totp enrolled", zap.String("login", u.Login))
	o.Env.Emit(r.Context(), Event{
		Name: EventFactorEnrolled, UserKey: u.ID, Login: u.Login, Family: "otp",
		Factor: state.FactorTOTP, ClientIP: RemoteIP(r),
	})
	WriteJSON(w, http.StatusCreated, "", totpEnrollAnswer{
		Secret: e.Secret, URI: e.URI,
		QRPNG: base64.StdEncoding.EncodeToString(e.PNG),
	})
}
