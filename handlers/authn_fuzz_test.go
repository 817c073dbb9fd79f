package handlers

import (
	"errors"
	"strings"
	"testing"
)

var authnSeeds = []string{
	`{"clientInfo":{"clientId":"app-client","clientSecret":"app-secret-9f3c"},"userInfo":{"userId":"alice","groups":["Default"]}}`,
	`{"challengeop":"Init","correlationId":"abc","nonce":"n","challengedata":{"factor":"ChallengeEmail",` +
		`"factorAttributes":[{"factorAttributeName":"x","factorAttributeValue":[{"name":"a","value":"b","isEnabled":"true"}]}]}}`,
	`{"CHALLENGEOP":"Validate","challengeAnswer":123456,"timeToLiveInSec":"60"}`,
	`{"challengeAnswer":true}`, `{"challengeAnswer":{}}`, `{"timeToLiveInSec":1e99}`,
	`[]`, `null`, `""`, `{`, ``, "{\"nonce\":\"\xff\"}",
	`<AuthnRequest><clientInfo><clientId>a</clientId></clientInfo><userInfo><groups>x</groups><groups>y</groups></userInfo></AuthnRequest>`,
	`<UpdateAuthnRequest><challengeop>Init</challengeop><challengedata><factor>ChallengeSMS</factor>` +
		`<factorAttributes><factorAttributeValue><name>a</name></factorAttributeValue></factorAttributes></challengedata></UpdateAuthnRequest>`,
	`<UpdateAuthnRequest><nonce>a</nonce><nonce>b</nonce><nonce>c</nonce></UpdateAuthnRequest>`,
	`<!DOCTYPE x [<!ENTITY a "b">]><AuthnRequest>&a;</AuthnRequest>`,
	`<AuthnRequest>` + strings.Repeat("<a>", 100), `<a></b>`, `<AuthnRequest/><AuthnRequest/>`,
}

// FuzzAuthnDecode decodes arbitrary bodies as JSON and as XML into both
// request types: never a panic, every failure a FieldError.
func FuzzAuthnDecode(f *testing.F) {
	for _, s := range append(authnSeeds, hostileVariants(authnSeeds[:3]...)...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, asXML := range []bool{false, true} {
			var post authnRequest
			if err := decodeAuthn(body, asXML, "AuthnRequest", &post); err != nil {
				if _, ok := errors.AsType[*FieldError](err); !ok {
					t.Fatalf("AuthnRequest (xml %v): error %T %v is not a FieldError", asXML, err, err)
				}
			}
			var put updateAuthnRequest
			if err := decodeAuthn(body, asXML, "UpdateAuthnRequest", &put); err != nil {
				if _, ok := errors.AsType[*FieldError](err); !ok {
					t.Fatalf("UpdateAuthnRequest (xml %v): error %T %v is not a FieldError", asXML, err, err)
				}
			}
		}
	})
}

// FuzzAuthnPUT sends arbitrary bodies to PUT /authn/v1 on a live flow: the
// answer is a 400 (or 200) in the family's shape, never a panic or a 500.
func FuzzAuthnPUT(f *testing.F) {
	for _, s := range append(authnSeeds, hostileVariants(authnSeeds[1:3]...)...) {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	fx := newAuthnFixture(f)
	f.Fuzz(func(t *testing.T, body []byte, asXML bool) {
		fx.t = t // calls of the target run one at a time in a process
		ct := "application/json"
		if asXML {
			ct = "application/xml"
		}
		w := fx.do("PUT", string(body), "Content-Type", ct, "Accept", "application/json")
		if w.Code >= 500 {
			t.Fatalf("PUT %q: %d %s", body, w.Code, w.Body)
		}
		if a := readAuthn(t, w); a.Status.Code == "" || a.Status.Status == "" {
			t.Fatalf("PUT %q: answer without status: %s", body, w.Body)
		}
	})
}
