package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

func TestOAMCreateDefaults(t *testing.T) {
	f := newOAM(t)
	w := f.do("POST", "/session", `{"userId":"alice","clientIp":"203.0.113.5"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	raw := w.Body.String()
	if !strings.Contains(raw, `"isImpersonating":false`) {
		t.Errorf("isImpersonating is not a JSON false: %s", raw)
	}
	if strings.Contains(raw, "userAttributes") {
		t.Errorf("empty userAttributes shown: %s", raw)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	got := decode[sessionJSON](t, w)
	if got.UserID != "alice" || got.ClientIP != "203.0.113.5" || got.IDStoreName != "UserIdentityStore1" {
		t.Errorf("answer: %+v", got)
	}
	if len(got.SessionID) != 43 || state.ValidateID(got.SessionID) != nil {
		t.Errorf("sessionId %q is not a server-made id", got.SessionID)
	}
	if len(got.SessionIndex) != 16 || got.SessionIndex == got.SessionID {
		t.Errorf("sessionIndex = %q", got.SessionIndex)
	}
	if got.IsImpersonating == nil || *got.IsImpersonating {
		t.Errorf("isImpersonating = %v", got.IsImpersonating)
	}
	for name, v := range map[string]string{
		"createTime": got.CreateTime, "updateTime": got.UpdateTime,
		"lastAccessTime": got.LastAccessTime,
	} {
		if v != "2026-11-22T10:00:00Z" {
			t.Errorf("%s = %q", name, v)
		}
	}
	if got.ExpiryTime != "2026-11-22T18:00:00Z" {
		t.Errorf("expiryTime = %q, want the 8h lifetime", got.ExpiryTime)
	}

	s, err := f.store.Get(context.Background(), state.KeyOf(got.SessionID))
	if err != nil {
		t.Fatalf("created session not in the store: %v", err)
	}
	if s.Status != state.StatusAuthenticated || !s.AuthTime.Equal(t0) || s.LoginName != "alice" {
		t.Errorf("stored: status %q auth %v login %q", s.Status, s.AuthTime, s.LoginName)
	}
	if s.IdleTimeout != 30*time.Minute {
		t.Errorf("stored idle timeout %v", s.IdleTimeout)
	}

	// Read back through GET: the same data.
	w = f.do("GET", "/session/"+got.SessionID, "")
	if w.Code != http.StatusOK {
		t.Fatalf("GET: %d %s", w.Code, w.Body)
	}
	if again := decode[sessionJSON](t, w); !equalJSON(again, got) {
		t.Errorf("GET = %+v, create answered %+v", again, got)
	}
	for _, e := range f.logs.All() {
		for _, v := range e.ContextMap() {
			if s, ok := v.(string); ok && strings.Contains(s, got.SessionID) {
				t.Errorf("log line %q shows the session id", e.Message)
			}
		}
	}
}

func equalJSON(a, b sessionJSON) bool {
	if (a.IsImpersonating == nil) != (b.IsImpersonating == nil) ||
		a.IsImpersonating != nil && *a.IsImpersonating != *b.IsImpersonating || len(a.UserAttributes) != len(b.UserAttributes) {
		return false
	}
	for k, v := range a.UserAttributes {
		if b.UserAttributes[k]["attrName"] != v["attrName"] || b.UserAttributes[k]["attrValue"] != v["attrValue"] {
			return false
		}
	}
	return a.UserID == b.UserID && a.SessionID == b.SessionID && a.SessionIndex == b.SessionIndex &&
		a.ClientIP == b.ClientIP && a.CreateTime == b.CreateTime && a.UpdateTime == b.UpdateTime &&
		a.LastAccessTime == b.LastAccessTime && a.ExpiryTime == b.ExpiryTime && a.IDStoreName == b.IDStoreName
}

func TestOAMCreateSecondFactorPolicy(t *testing.T) {
	f := newOAM(t)
	f.env.Policy.RequireSecondFactor = true
	got := f.create(`{"userId":"alice"}`)
	s, err := f.store.Get(context.Background(), state.KeyOf(got.SessionID))
	if err != nil || s.Status != state.StatusPendingVerification {
		t.Fatalf("status %v, %v; want pending verification", s, err)
	}
}

func TestOAMCreateSuppliedSessionID(t *testing.T) {
	f := newOAM(t)
	const uuid = "96eb744b-b84e-4c13-8b78-06b64ad81d94"
	got := f.create(`{"userId":"alice","sessionId":"` + uuid + `"}`)
	if got.SessionID != uuid {
		t.Fatalf("sessionId = %q, want the supplied one", got.SessionID)
	}
	if w := f.do("GET", "/session/"+uuid, ""); w.Code != http.StatusOK {
		t.Fatalf("GET of the supplied id: %d", w.Code)
	}

	for _, bad := range []string{
		"short", "00000000-0000-0000-0000-000000000000",
		"6ba7b810-9dad-11d1-80b4-00c04fd430c8", strings.Repeat("a", 43), "has spaces in it and is long enough",
		strings.Repeat("aZ09-_bY", 40),
	} {
		before := f.snapshot()
		w := f.do("POST", "/session", `{"userId":"alice","sessionId":"`+bad+`"}`)
		e := assertError(t, w, http.StatusBadRequest, "sessionId")
		if strings.Contains(*e.Message, bad) {
			t.Errorf("error message echoes the id: %q", *e.Message)
		}
		f.assertUnchanged(before)
	}

	// A duplicate is refused and the first session is untouched.
	before := f.snapshot()
	w := f.do("POST", "/session", `{"userId":"mallory","sessionId":"`+uuid+`"}`)
	assertError(t, w, http.StatusBadRequest, "sessionId")
	f.assertUnchanged(before)
	s, _ := f.store.Get(context.Background(), state.KeyOf(uuid))
	if s.UserID != "alice" {
		t.Fatalf("duplicate create replaced the session's user with %q", s.UserID)
	}
}

func TestOAMCreateExpiryTime(t *testing.T) {
	tests := []struct {
		name, in, want, field string
	}{
		{"later than the lifetime is capped", "2026-11-23T10:00:00Z", "2026-11-22T18:00:00Z", ""},
		{"earlier is kept", "2026-11-22T12:00:00Z", "2026-11-22T12:00:00Z", ""},
		{"offset is converted to UTC", "2026-11-22T13:00:00+01:00", "2026-11-22T12:00:00Z", ""},
		{"now is refused", "2026-11-22T10:00:00Z", "", "expiryTime"},
		{"past is refused", "2026-11-21T10:00:00Z", "", "expiryTime"},
		{"not RFC 3339", "22/11/2026", "", "expiryTime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOAM(t)
			w := f.do("POST", "/session", `{"userId":"alice","expiryTime":"`+tt.in+`"}`)
			if tt.field != "" {
				assertError(t, w, http.StatusBadRequest, tt.field)
				f.assertUnchanged(map[state.Key]uint64{})
				return
			}
			if w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if got := decode[sessionJSON](t, w); got.ExpiryTime != tt.want {
				t.Fatalf("expiryTime = %q, want %q", got.ExpiryTime, tt.want)
			}
		})
	}
}

func TestOAMCreateUserAttributes(t *testing.T) {
	f := newOAM(t)
	got := f.create(`{"userId":"alice","userAttributes":{"mail":{"attrName":"mail","attrValue":"alice@example.com"},` +
		`"dept":{"attrValue":"sales"}}}`)
	want := map[string]map[string]string{
		"mail": {"attrName": "mail", "attrValue": "alice@example.com"},
		"dept": {"attrName": "dept", "attrValue": "sales"},
	}
	if len(got.UserAttributes) != len(want) {
		t.Fatalf("userAttributes = %v", got.UserAttributes)
	}
	for k, v := range want {
		if got.UserAttributes[k]["attrName"] != v["attrName"] || got.UserAttributes[k]["attrValue"] != v["attrValue"] {
			t.Errorf("userAttributes[%s] = %v, want %v", k, got.UserAttributes[k], v)
		}
	}

	for _, tt := range []struct{ body, field string }{
		{`{"userId":"alice","userAttributes":{"mail":{"attrName":"other","attrValue":"x"}}}`, "userAttributes.mail"},
		// encoding/json names the map, not the key, for a value of the wrong type.
		{`{"userId":"alice","userAttributes":{"mail":"alice@example.com"}}`, "userAttributes"},
		{`{"userId":"alice","userAttributes":{"mail":{"attrName":"mail","attrValue":5}}}`, "userAttributes.attrValue"},
		{`{"userId":"alice","userAttributes":["mail"]}`, "userAttributes"},
	} {
		before := f.snapshot()
		assertError(t, f.do("POST", "/session", tt.body), http.StatusBadRequest, tt.field)
		f.assertUnchanged(before)
	}
}

func TestOAMCreateIsImpersonating(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{{`true`, true}, {`"true"`, true}, {`false`, false}, {`"false"`, false}, {`null`, false}} {
		f := newOAM(t)
		got := f.create(`{"userId":"alice","isImpersonating":` + tt.in + `}`)
		if got.IsImpersonating == nil || *got.IsImpersonating != tt.want {
			t.Errorf("isImpersonating %s → %v, want %v", tt.in, got.IsImpersonating, tt.want)
		}
	}
	f := newOAM(t)
	for _, bad := range []string{`"yes"`, `1`, `{}`, `[]`, `"TRUE "`} {
		w := f.do("POST", "/session", `{"userId":"alice","isImpersonating":`+bad+`}`)
		if bad == `"TRUE "` {
			// Only the exact spellings count.
			assertError(t, w, http.StatusBadRequest, "isImpersonating")
			continue
		}
		e := assertError(t, w, http.StatusBadRequest, "isImpersonating")
		if !strings.Contains(*e.Message, "boolean") {
			t.Errorf("message %q does not say a boolean is wanted", *e.Message)
		}
	}
	f.assertUnchanged(map[state.Key]uint64{})
}

func TestOAMCreateIDStoreName(t *testing.T) {
	f := newOAM(t)
	if got := f.create(`{"userId":"alice","idStoreName":"LDAP2"}`); got.IDStoreName != "LDAP2" {
		t.Fatalf("idStoreName = %q", got.IDStoreName)
	}
	// Field names are matched in any letter case.
	if got := f.create(`{"USERID":"bob","IdStoreName":"LDAP3"}`); got.UserID != "bob" || got.IDStoreName != "LDAP3" {
		t.Fatalf("case-insensitive fields: %+v", got)
	}
}

func TestOAMGet(t *testing.T) {
	f := newOAM(t)
	got := f.create(`{"userId":"alice"}`)

	// Unknown id, empty-ish and over-long ids: 404 in the family's shape.
	for _, p := range []string{"/session/" + state.NewID(), "/session/" + strings.Repeat("a", 300)} {
		assertError(t, f.do("GET", p, ""), http.StatusNotFound, "sessionId")
	}

	// Idle for 30 minutes: gone, even though no sweeper ran.
	f.clk.Advance(30 * time.Minute)
	assertError(t, f.do("GET", "/session/"+got.SessionID, ""), http.StatusNotFound, "sessionId")
}

func TestOAMGetAfterAbsoluteExpiry(t *testing.T) {
	f := newOAM(t)
	f.env.Policy.IdleTimeout = 0
	got := f.create(`{"userId":"alice","expiryTime":"2026-11-22T11:00:00Z"}`)
	f.clk.Advance(time.Hour - time.Second)
	if w := f.do("GET", "/session/"+got.SessionID, ""); w.Code != http.StatusOK {
		t.Fatalf("GET before expiry: %d", w.Code)
	}
	f.clk.Advance(time.Second)
	assertError(t, f.do("GET", "/session/"+got.SessionID, ""), http.StatusNotFound, "sessionId")
}

func TestOAMGetEncodedID(t *testing.T) {
	f := newOAM(t)
	const id = "Ab3dEFgH12+4|ijKLmnOP56/78=="
	f.create(`{"userId":"alice","sessionId":"` + id + `"}`)
	for _, p := range []string{
		url.PathEscape(id),
		"Ab3dEFgH12%2B4%7CijKLmnOP56%2F78%3D%3D",
		"Ab3dEFgH12+4%7CijKLmnOP56%2F78==",
	} {
		w := f.do("GET", "/session/"+p, "")
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, w.Code, w.Body)
		}
		if got := decode[sessionJSON](t, w); got.SessionID != id {
			t.Fatalf("GET %s: sessionId %q", p, got.SessionID)
		}
	}
	// Raw '|', '+' and '=' as a client sends them.
	const id2 = "Ab3dEFgH12+4|ijKLmnOP5678=="
	f.create(`{"userId":"alice","sessionId":"` + id2 + `"}`)
	w := f.do("GET", "/session/"+id2, "")
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", id2, w.Code, w.Body)
	}
	if got := decode[sessionJSON](t, w); got.SessionID != id2 {
		t.Fatalf("GET %s: sessionId %q", id2, got.SessionID)
	}
	// '+' in a path is not a space.
	assertError(t, f.do("GET", "/session/Ab3dEFgH12%204%7CijKLmnOP56%2F78==", ""), http.StatusNotFound, "sessionId")
}
