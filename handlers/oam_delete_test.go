package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/authsession/caddy-authsession/state"
)

func ids(ss []sessionJSON) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.SessionID)
	}
	slices.Sort(out)
	return out
}

func TestOAMDeleteBySessionID(t *testing.T) {
	f := newOAM(t)
	a := f.create(`{"userId":"alice"}`)
	b := f.create(`{"userId":"alice"}`)
	w := f.do("DELETE", "/session?sessionId="+url.QueryEscape(a.SessionID)+"&userId=alice", "")
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	got := decode[[]sessionJSON](t, w)
	if len(got) != 1 || got[0].SessionID != a.SessionID || got[0].UserID != "alice" {
		t.Fatalf("deleted = %+v, want only the named session (sessionId wins over userId)", got)
	}
	assertError(t, f.do("GET", "/session/"+a.SessionID, ""), http.StatusNotFound, "sessionId")
	if w := f.do("GET", "/session/"+b.SessionID, ""); w.Code != http.StatusOK {
		t.Fatalf("the other session of the user is gone: %d", w.Code)
	}
	// Deleting again: none found.
	before := f.snapshot()
	assertError(t, f.do("DELETE", "/session?sessionId="+url.QueryEscape(a.SessionID), ""), http.StatusNotFound, "sessionId")
	f.assertUnchanged(before)
}

func TestOAMDeleteByUser(t *testing.T) {
	f := newOAM(t)
	var alice, ldap []string
	for i := range 3 {
		alice = append(alice, f.create(`{"userId":"alice"}`).SessionID)
		if i == 0 {
			ldap = append(ldap, f.create(`{"userId":"alice","idStoreName":"LDAP"}`).SessionID)
		}
	}
	bob := f.create(`{"userId":"bob"}`).SessionID

	// Only the sessions of alice in LDAP.
	w := f.do("DELETE", "/session?userId=alice&idStore=LDAP", "")
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if got := ids(decode[[]sessionJSON](t, w)); !slices.Equal(got, ldap) {
		t.Fatalf("deleted %v, want %v", got, ldap)
	}
	// Then every other session of alice, with their ids.
	w = f.do("DELETE", "/session?userId=alice", "")
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	slices.Sort(alice)
	if got := ids(decode[[]sessionJSON](t, w)); !slices.Equal(got, alice) {
		t.Fatalf("deleted %v, want %v", got, alice)
	}
	for _, id := range append(alice, ldap...) {
		assertError(t, f.do("GET", "/session/"+id, ""), http.StatusNotFound, "sessionId")
	}
	if w := f.do("GET", "/session/"+bob, ""); w.Code != http.StatusOK {
		t.Fatalf("bob's session is gone: %d", w.Code)
	}

	before := f.snapshot()
	assertError(t, f.do("DELETE", "/session?userId=alice", ""), http.StatusNotFound, "")
	assertError(t, f.do("DELETE", "/session?userId=bob&idStore=LDAP", ""), http.StatusNotFound, "")
	assertError(t, f.do("DELETE", "/session?userId=nobody", ""), http.StatusNotFound, "")
	assertError(t, f.do("DELETE", "/session", ""), http.StatusNotFound, "sessionId")
	assertError(t, f.do("DELETE", "/session?idStore=UserIdentityStore1", ""), http.StatusNotFound, "sessionId")
	f.assertUnchanged(before)
}

func TestOAMDeleteByUserCapsTheAnswer(t *testing.T) {
	f := newOAM(t)
	for i := range 30 {
		f.create(fmt.Sprintf(`{"userId":"alice","clientIp":"10.0.0.%d"}`, i))
		f.clk.Advance(1)
	}
	w := f.do("DELETE", "/session?userId=alice", "")
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if got := decode[[]sessionJSON](t, w); len(got) != 28 {
		t.Fatalf("answer lists %d sessions, want 28", len(got))
	}
	if ss, _ := f.store.ByUser(context.Background(), "alice"); len(ss) != 0 {
		t.Fatalf("%d sessions of alice left; all 30 must be deleted", len(ss))
	}
}

func TestOAMDeleteExpiredIsNotFound(t *testing.T) {
	f := newOAM(t)
	a := f.create(`{"userId":"alice"}`)
	f.clk.Advance(f.env.Policy.IdleTimeout)
	assertError(t, f.do("DELETE", "/session?sessionId="+url.QueryEscape(a.SessionID), ""), http.StatusNotFound, "sessionId")
	assertError(t, f.do("DELETE", "/session?userId=alice", ""), http.StatusNotFound, "")
	if _, err := f.store.Get(context.Background(), state.KeyOf(a.SessionID)); err == nil {
		t.Fatal("expired session readable")
	}
}
