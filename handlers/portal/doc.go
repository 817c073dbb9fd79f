// Package portal serves the browser sign-in pages of caddy-authsession
// (Portal): sign-in with the password of the users file, a second factor (a
// code sent by mail or SMS through a delivery.Deliverer, or TOTP) with an
// optional "trust this device" (trust.go), sign-out, and the list of the
// user's sessions. The pages are html/template files embedded from
// templates/, each of which a directory can replace (LoadPages). Every form
// carries a signed double-submit CSRF token bound to the session
// (csrf.go); failed passwords and codes are counted per client IP and per
// login by a FailureCounter (FailureLimiter counts in memory).
//
// The portal keeps its sessions in the store of the handlers.Env it shares
// with the API families, and uses the helpers package handlers exports for
// them; package handlers does not import it.
package portal
