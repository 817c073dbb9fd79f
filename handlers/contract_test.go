package handlers

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authsession/caddy-authsession/internal/contract"
)

// contractServer serves one family, checked against its document, on a
// real listener (so a panic shows as the dropped connection a client
// would see), and returns a function that adds the family's credentials.
func contractServer(t *testing.T, family string) (*httptest.Server, func(*http.Request)) {
	t.Helper()
	basic := func(r *http.Request) { r.SetBasicAuth(apiUser, apiPass) }
	var h http.Handler
	auth := basic
	switch family {
	case "oam":
		h = newOAM(t).mux
	case "risk-analyzer":
		h = newRA(t).mux
	case "authn":
		h = newAuthnFixture(t).mux
	case "otp":
		h = newOTPFixture(t, true).h
		auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+otpToken) }
	default:
		t.Fatalf("no server for family %q", family)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, auth
}

// examplePath fills an operation's path template from its parameters'
// examples.
func examplePath(m *contract.Match) string {
	p := m.Path
	params := append(m.Item.Parameters, m.Route.Operation.Parameters...)
	for _, ref := range params {
		if v := ref.Value; v != nil && v.In == "path" {
			p = strings.ReplaceAll(p, "{"+v.Name+"}", fmt.Sprint(v.Example))
		}
	}
	return p
}

// TestContractNegative sends every operation the bad requests generated
// from its document (contract.Negatives) and wants each answered with a
// documented 4xx in the family's error shape: never a 2xx, a 5xx or a
// dropped connection. The family's checker validates each answer's shape;
// this test checks the status.
func TestContractNegative(t *testing.T) {
	specs, err := contract.Specs()
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	for _, m := range contract.Operations(specs) {
		negs := contract.Negatives(m)
		if len(negs) == 0 {
			continue
		}
		t.Run(m.OperationID(), func(t *testing.T) {
			srv, auth := contractServer(t, m.Family())
			path := examplePath(m)
			for _, n := range negs {
				cases++
				req, err := http.NewRequest(m.Route.Method, srv.URL+path, bytes.NewReader(n.Body))
				if err != nil {
					t.Fatal(err)
				}
				auth(req)
				if n.ContentType != "" {
					req.Header.Set("Content-Type", n.ContentType)
				}
				if n.Accept != "" {
					req.Header.Set("Accept", n.Accept)
				}
				p := &contract.Pair{Match: m, Method: m.Route.Method, Path: path, ReqHeader: req.Header, ReqBody: n.Body, RespHeader: http.Header{}}
				resp, err := srv.Client().Do(req)
				var problem string
				if err != nil {
					p.Panicked = true
					problem = "negative case " + n.Name + ": the connection was dropped: " + err.Error()
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					p.Status, p.RespHeader = resp.StatusCode, resp.Header
					switch {
					case n.Want != 0 && resp.StatusCode != n.Want:
						problem = fmt.Sprintf("negative case %s: want %d, got %d", n.Name, n.Want, resp.StatusCode)
					case resp.StatusCode < 400 || resp.StatusCode >= 500:
						problem = fmt.Sprintf("negative case %s: want a 4xx, got %d", n.Name, resp.StatusCode)
					}
				}
				if problem == "" {
					continue
				}
				if d := contract.KnownDivergence(p, problem); d != "" {
					t.Logf("known divergence %q: %s", d, problem)
					continue
				}
				t.Errorf("%s %s: %s\n  body: %.200s", m.Route.Method, path, problem, n.Body)
			}
		})
	}
	t.Logf("%d generated bad requests sent", cases)
}
