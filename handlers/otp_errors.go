package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/authsession/caddy-authsession/state"
)

// JSONAPIContentType is the media type of the OTP family's error documents.
const JSONAPIContentType = "application/vnd.api+json"

// jsonAPIDoc is a JSON:API error document.
type jsonAPIDoc struct {
	Errors []jsonAPIError `json:"errors"`
}

type jsonAPIError struct {
	ID     string         `json:"id"`
	Status string         `json:"status"`
	Code   string         `json:"code"`
	Title  string         `json:"title"`
	Detail string         `json:"detail,omitempty"`
	Source *jsonAPISource `json:"source,omitempty"`
}

type jsonAPISource struct {
	Pointer string `json:"pointer,omitempty"`
}

// Stable codes and titles of the OTP family's errors. A title never varies
// between occurrences; the detail does.
var otpTitles = map[string]string{
	"unauthorized":       "Unauthorized",
	"session-not-found":  "Session not found",
	"user-not-found":     "User not found",
	"invalid-otp":        "Invalid one-time password",
	"bad-request":        "Bad request",
	"body-too-large":     "Request body too large",
	"unsupported-media":  "Unsupported media type",
	"not-acceptable":     "Not acceptable",
	"unsupported-type":   "Unsupported OTP type",
	"challenge-blocked":  "Challenge blocked",
	"too-many-requests":  "Too many requests",
	"channel_comm_error": "OTP delivery failed",
	"no-destination":     "No delivery address",
	"store-unavailable":  "Session store unavailable",
	"internal-error":     "Internal error",
	"method-not-allowed": "Method not allowed",
}

// jsonAPIFail writes a one-error JSON:API document. pointer names the
// offending body member ("/userId"), if any.
func jsonAPIFail(w http.ResponseWriter, status int, code, detail, pointer string) {
	e := jsonAPIError{
		ID: state.NewIndex(), Status: strconv.Itoa(status), Code: code,
		Title: otpTitles[code], Detail: detail,
	}
	if pointer != "" {
		e.Source = &jsonAPISource{Pointer: pointer}
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="authsession"`)
	}
	WriteJSON(w, status, JSONAPIContentType, jsonAPIDoc{Errors: []jsonAPIError{e}})
}

// jsonAPIBadInput answers a body that cannot be read or decoded.
func jsonAPIBadInput(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrTooLarge) {
		jsonAPIFail(w, http.StatusRequestEntityTooLarge, "body-too-large", err.Error(), "")
		return
	}
	if fe, ok := errors.AsType[*FieldError](err); ok {
		ptr := ""
		if fe.Field != "" {
			ptr = "/" + strings.ReplaceAll(fe.Field, ".", "/")
		}
		jsonAPIFail(w, http.StatusBadRequest, "bad-request", fe.Error(), ptr)
		return
	}
	jsonAPIFail(w, http.StatusBadRequest, "bad-request", "the request body cannot be read", "")
}
