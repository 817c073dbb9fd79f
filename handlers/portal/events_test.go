package portal

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

type recordedEvents struct {
	mu     sync.Mutex
	events []handlers.Event
}

func (l *recordedEvents) Emit(_ context.Context, ev handlers.Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *recordedEvents) take() []handlers.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

func eventNames(evs []handlers.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Name + "/" + e.Reason + "/" + e.Factor
	}
	return out
}

// TestPortalEmitsItsEvents: a wrong password of a known user names the
// user; one of an unknown login names nobody (it may be a password typed
// in the wrong field); a wrong code is a login failure with its factor;
// the sign-in emits session_created for the pre-auth session and
// session_authenticated for the rotated one (no second session_created);
// sign-out revokes with reason logout.
func TestPortalEmitsItsEvents(t *testing.T) {
	f := newPortalFixture(t, "")
	var log recordedEvents
	f.portal.Env.Events = &log
	b := f.browser(t)
	b.get("/auth/login")
	wantStatus(t, b.post("/auth/login", "login", "mailonly", "password", "wrong"), http.StatusUnauthorized, b.page)
	wantStatus(t, b.post("/auth/login", "login", "correct-horse-battery", "password", "wrong"), http.StatusUnauthorized, b.page)
	evs := log.take()
	if got := eventNames(evs); !slices.Equal(got, []string{"login_failed/wrong_password/password", "login_failed/unknown_user/password"}) {
		t.Fatalf("wrong passwords: %v", got)
	}
	if evs[0].UserKey != "mail-id" || evs[0].Login != "mailonly" || evs[0].ClientIP != "192.0.2.1" {
		t.Fatalf("known user's failure: %+v", evs[0])
	}
	if evs[1].UserKey != "" || evs[1].Login != "" {
		t.Fatalf("an unknown login is in the event: %+v", evs[1])
	}

	pre := b.signIn("mailonly", "/app")
	b.get("/auth/otp")
	b.post("/auth/otp/send")
	b.get("/auth/otp?factor=email")
	wantStatus(t, b.post("/auth/otp", "factor", "email", "code", "000000x"), http.StatusUnauthorized, b.page)
	resp := b.post("/auth/otp", "factor", "email", "code", f.mail.last(t).Code)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	evs = log.take()
	want := []string{
		"session_created//",
		"login_failed/wrong_code/" + state.FactorEmail,
		"session_authenticated//" + state.FactorEmail,
	}
	if got := eventNames(evs); !slices.Equal(got, want) {
		t.Fatalf("sign-in: %v, want %v", got, want)
	}
	if evs[0].Session != state.KeyOf(pre) || evs[2].Session != state.KeyOf(b.cookie()) || evs[2].UserKey != "mail-id" {
		t.Fatalf("sign-in events name the wrong sessions: %+v", evs)
	}
	b.get("/auth/logout")
	b.post("/auth/logout")
	evs = log.take()
	if got := eventNames(evs); !slices.Equal(got, []string{"session_revoked/logout/"}) || evs[0].Family != "portal" {
		t.Fatalf("sign-out: %v", evs)
	}
}
