// Package handlers holds the plain net/http handlers of caddy-authsession's
// APIs and of its gate; it imports nothing of Caddy. Each API is a family
// of files with its own encoding and error shape:
//
//	oam*.go           OAM, the access-manager session API
//	riskanalyzer*.go  RiskAnalyzer, the risk-analyzer session API
//	authn*.go         Authn, the challenge flow (/authn/v1, /oaa/runtime/authn/v1)
//	otp*.go           OTPSessions, the OTP session family (JSON:API)
//	gate*.go          Gate, the check in front of the protected apps
//
// What several families use is defined once, outside any family: wire.go
// (reading and decoding bodies, writing answers, the forms of the values
// shown to clients: timestamps, Retry-After, masked addresses, redirect
// targets, session fields), env.go (Env, what every handler shares: the
// store, clock, sealer, session policy and logger) and credentials.go (the
// Basic and Bearer credentials of the API callers). A family's file uses
// nothing that another family's file defines.
//
// Two parts live in packages of their own: the browser portal
// (handlers/portal, which builds on this package's exported helpers) and
// the delivery of one-time codes (handlers/delivery, whose Deliverer the
// OTP and challenge APIs hold). This package imports delivery but never
// portal; otherwise it depends only on package state, and its tests run
// in-process (httptest, and internal/smtptest for the mail of the OTP API).
package handlers
