// Package handlers holds the plain net/http handlers of caddy-authsession:
// one file family per API (oam, riskanalyzer, authn, otp), the gate and the
// portal, with each API's own encoding and error shape. It depends only on
// the interfaces of package state and can be tested with httptest alone.
package handlers
