package handlers

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var jsonSeeds = []string{
	`{"userId":"alice"}`,
	`{"userId":"alice","sessionId":"96eb744b-b84e-4c13-8b78-06b64ad81d94","clientIp":"203.0.113.5",` +
		`"idStoreName":"LDAP","isImpersonating":"true","expiryTime":"2026-11-22T12:00:00Z",` +
		`"userAttributes":{"mail":{"attrName":"mail","attrValue":"a@example.com"}}}`,
	`{"userId":42}`,
	`{"isImpersonating":1}`,
	`{"userAttributes":{"mail":"x"}}`,
	`{"userAttributes":{"mail":{"attrName":"other","attrValue":"x"}}}`,
	`{"fromIndex":"5","pageSize":1.5,"createTime":"x"}`,
	`[]`, `null`, `""`, `{`, `{"userId":"a"} x`, ``, `{"a":` + strings.Repeat("[", 200) + `}`,
	"{\"userId\":\"\xff\xfe\"}",
}

// FuzzDecodeJSON decodes arbitrary bodies into the OAM types: never a
// panic, and every failure is a FieldError.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range append(jsonSeeds, hostileVariants(jsonSeeds...)...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var sd oamSessionData
		if err := DecodeJSON(body, &sd); err != nil {
			if _, ok := errors.AsType[*FieldError](err); !ok {
				t.Fatalf("SessionData: error %T %v is not a FieldError", err, err)
			}
		}
		var q oamSearchQuery
		if err := DecodeJSON(body, &q); err != nil {
			if _, ok := errors.AsType[*FieldError](err); !ok {
				t.Fatalf("SessionSearchQuery: error %T %v is not a FieldError", err, err)
			}
		}
	})
}

// FuzzOAMCreate sends arbitrary bodies to the create endpoint: the answer
// is 200 or 400 in the family's shape, and a 400 stores nothing.
func FuzzOAMCreate(f *testing.F) {
	for _, s := range append(jsonSeeds, hostileVariants(jsonSeeds[:2]...)...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		o := newOAM(t)
		w := o.do("POST", "/session", body)
		switch w.Code {
		case http.StatusOK:
			var got sessionJSON
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.SessionID == "" {
				t.Fatalf("200 with %s (%v)", w.Body, err)
			}
		case http.StatusBadRequest:
			var e errorJSON
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == nil || *e.Code != 400 {
				t.Fatalf("400 with %s (%v)", w.Body, err)
			}
			o.assertUnchanged(nil)
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}

// FuzzSearchCompile compiles arbitrary query strings and bodies into a
// search filter: never a panic, failures are FieldErrors.
func FuzzSearchCompile(f *testing.F) {
	for _, s := range append(jsonSeeds, hostileVariants(jsonSeeds[:2]...)...) {
		f.Add("userId=alice", s)
	}
	f.Add("sessionId=%7C%2B%3D&idStore=LDAP", `{"createTime":"2026-11-22T10:00:00Z"}`)
	f.Add("%zz&userId", "")
	f.Add(";;&&==", `{"updateTime":"2026-13-45T99:99:99Z","lastAccessTime":"","expiryTime":"2026-11-22T10:00:00+25:00"}`)
	f.Fuzz(func(t *testing.T, query, body string) {
		r := httptest.NewRequest("POST", OAMBase+"/sessions", nil)
		r.URL.RawQuery = query
		flt, err := compileSearch(r, []byte(body), &Env{})
		if err != nil {
			if _, ok := errors.AsType[*FieldError](err); !ok {
				t.Fatalf("error %T %v is not a FieldError", err, err)
			}
			return
		}
		if flt == nil {
			t.Fatal("nil filter without an error")
		}
	})
}
