package handlers

import (
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/authsession/caddy-authsession/state"
)

// TestRiskAnalyzerUpdateXMLRoot: an XML update whose root element is not
// SessionData (the specification's root) is refused with 400, responseCode
// "1" naming the root, in the answer's own encoding, and the session stays
// as it was; SessionData in any letter case or namespace is accepted.
func TestRiskAnalyzerUpdateXMLRoot(t *testing.T) {
	fields := func(id string) string {
		return `<requestId>` + id + `</requestId><authenticationStatus>0</authenticationStatus><clientType>0</clientType>`
	}
	for _, tc := range []struct {
		name, root, open string
		code             int
	}{
		{"other root", "SessionRequest", "<SessionRequest>", 400},
		{"status response", "StatusResponse", "<StatusResponse>", 400},
		{"prefix of the root", "Session", "<Session>", 400},
		{"longer root", "SessionDataX", "<SessionDataX>", 400},
		{"seed root", "SessionData", "<SessionData>", 200},
		{"any case", "sessiondata", "<sessiondata>", 200},
		{"namespaced", "ra:SessionData", `<ra:SessionData xmlns:ra="urn:example:ra">`, 200},
		{"default namespace", "SessionData", `<SessionData xmlns="urn:example:ra">`, 200},
	} {
		for _, path := range []string{"/updatesessionsecurely", "/{id}"} {
			t.Run(tc.name+path, func(t *testing.T) {
				f := newRA(t)
				id := state.NewID()
				f.create(t, id)
				before := f.session(t, id)
				p := RiskBase + strings.Replace(path, "{id}", id, 1)
				body := `<?xml version="1.0" encoding="UTF-8"?>` + tc.open + fields(id) + `</` + tc.root + `>`
				rec := f.do(t, "PUT", p, "application/xml", "", body)
				if rec.Code != tc.code {
					t.Fatalf("status %d, want %d: %s", rec.Code, tc.code, rec.Body)
				}
				after := f.session(t, id)
				if tc.code == 200 {
					if after.Status != state.StatusAuthenticated {
						t.Fatalf("status %q after the update", after.Status)
					}
					return
				}
				var res statusResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.Status || res.ResponseCode != "1" ||
					!strings.Contains(res.ResponseMessage, "SessionData") {
					t.Fatalf("error body %s, want responseCode 1 naming SessionData", rec.Body)
				}
				if after.Version != before.Version || after.Status != before.Status {
					t.Fatalf("a refused update changed the session: %+v", after)
				}
				// The same refusal answered in XML.
				rec = f.do(t, "PUT", p, "application/xml", "application/xml", body)
				var xres statusResponse
				if err := xml.Unmarshal(rec.Body.Bytes(), &xres); rec.Code != 400 || err != nil || xres.ResponseCode != "1" || xres.Status {
					t.Fatalf("XML answer %d %s", rec.Code, rec.Body)
				}
			})
		}
	}
}
