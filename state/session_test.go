package state

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func equalSessions(a, b *Session) bool { return reflect.DeepEqual(a, b) }

func TestNewSession(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	sealer, err := NewSealer(NewSealKey())
	if err != nil {
		t.Fatal(err)
	}
	id := NewID()
	s := NewSession(id, sealer, now, 8*time.Hour, 30*time.Minute)
	if s.Key != KeyOf(id) {
		t.Errorf("Key is not KeyOf(id)")
	}
	if s.Status != StatusPendingIdentification {
		t.Errorf("Status = %q", s.Status)
	}
	if !s.CreateTime.Equal(now) || !s.UpdateTime.Equal(now) || !s.LastAccessTime.Equal(now) {
		t.Errorf("times: %v %v %v", s.CreateTime, s.UpdateTime, s.LastAccessTime)
	}
	if !s.ExpiryTime.Equal(now.Add(8 * time.Hour)) {
		t.Errorf("ExpiryTime = %v", s.ExpiryTime)
	}
	if s.IdleTimeout != 30*time.Minute {
		t.Errorf("IdleTimeout = %v", s.IdleTimeout)
	}
	if len(s.Index) != 16 || s.Index == id {
		t.Errorf("Index = %q", s.Index)
	}
	got, err := sealer.Open(s.Key, s.SealedID)
	if err != nil || got != id {
		t.Errorf("sealed id opens to %q, %v", got, err)
	}
	if NewSession(id, nil, now, time.Hour, 0).SealedID != nil {
		t.Errorf("a session without a sealer carries a sealed id")
	}
}

func TestLiveAndDeadline(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		lifetime time.Duration
		idle     time.Duration
		accessed time.Duration // LastAccessTime - t0
		deadline time.Duration // expected Deadline - t0
		at       []time.Duration
		live     []bool
	}{
		{
			"absolute only", 8 * time.Hour, 0, 0, 8 * time.Hour,
			[]time.Duration{0, 8*time.Hour - time.Nanosecond, 8 * time.Hour, 9 * time.Hour},
			[]bool{true, true, false, false},
		},
		{
			"idle first", 8 * time.Hour, 30 * time.Minute, 0, 30 * time.Minute,
			[]time.Duration{29 * time.Minute, 30*time.Minute - time.Nanosecond, 30 * time.Minute, time.Hour},
			[]bool{true, true, false, false},
		},
		{
			"accessed later moves the idle end", 8 * time.Hour, 30 * time.Minute, time.Hour, 90 * time.Minute,
			[]time.Duration{80 * time.Minute, 90 * time.Minute},
			[]bool{true, false},
		},
		{
			"absolute caps idle", 8 * time.Hour, 30 * time.Minute, 7*time.Hour + 45*time.Minute, 8 * time.Hour,
			[]time.Duration{8*time.Hour - time.Second, 8 * time.Hour},
			[]bool{true, false},
		},
		{
			"before creation is live", time.Hour, 0, 0, time.Hour,
			[]time.Duration{-time.Minute},
			[]bool{true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSession(NewID(), nil, t0, tt.lifetime, tt.idle)
			s.LastAccessTime = t0.Add(tt.accessed)
			if got := s.Deadline(); !got.Equal(t0.Add(tt.deadline)) {
				t.Errorf("Deadline = +%v, want +%v", got.Sub(t0), tt.deadline)
			}
			for i, at := range tt.at {
				if got := s.Live(t0.Add(at)); got != tt.live[i] {
					t.Errorf("Live(+%v) = %v, want %v", at, got, tt.live[i])
				}
			}
		})
	}
}

func TestAuthenticatedNeedsStatusAndLife(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s := NewSession(NewID(), nil, t0, time.Hour, 0)
	if s.Authenticated(t0) {
		t.Fatal("a pending session counts as authenticated")
	}
	if err := s.SetStatus(StatusAuthenticated, t0, "", 0); err != nil {
		t.Fatal(err)
	}
	if !s.Authenticated(t0) {
		t.Fatal("an authenticated live session does not count")
	}
	if s.Authenticated(t0.Add(time.Hour)) {
		t.Fatal("an expired session counts as authenticated")
	}
}

func TestCloneIsDeep(t *testing.T) {
	one, two := 1, 2
	s := &Session{
		SealedID:             []byte{1, 2, 3},
		UserAttributes:       map[string]string{"mail": "a@example.com"},
		Factors:              []string{"otp"},
		Fingerprints:         []Fingerprint{{Cookie: "c", Fingerprint: "f", CookieType: "1"}},
		AuthenticationStatus: &one,
		ClientType:           &two,
		Challenge:            &Challenge{CorrelationID: "c", NonceHash: []byte{4}, AnswerHash: []byte{5}, Attempts: 1},
	}
	c := s.Clone()
	if !equalSessions(s, c) {
		t.Fatal("clone differs from the original")
	}
	c.SealedID[0] = 9
	c.UserAttributes["mail"] = "b@example.com"
	c.Factors[0] = "totp"
	c.Fingerprints[0].Fingerprint = "g"
	*c.AuthenticationStatus = 7
	*c.ClientType = 7
	c.Challenge.NonceHash[0] = 9
	c.Challenge.AnswerHash[0] = 9
	c.Challenge.Attempts = 5
	if s.SealedID[0] != 1 || s.UserAttributes["mail"] != "a@example.com" || s.Factors[0] != "otp" ||
		s.Fingerprints[0].Fingerprint != "f" || *s.AuthenticationStatus != 1 || *s.ClientType != 2 || s.Challenge.NonceHash[0] != 4 ||
		s.Challenge.AnswerHash[0] != 5 || s.Challenge.Attempts != 1 {
		t.Fatalf("changing the clone changed the original: %+v %+v", s, s.Challenge)
	}
}

func TestUserStateCloneIsDeep(t *testing.T) {
	u := &UserState{UserID: "alice", Devices: []Device{{ID: "d1"}}, History: []Login{{ClientIP: "1"}}}
	c := u.Clone()
	c.Devices[0].ID = "d2"
	c.History[0].ClientIP = "2"
	if u.Devices[0].ID != "d1" || u.History[0].ClientIP != "1" {
		t.Fatal("changing the clone changed the original")
	}
}

// TestSessionRecordWithoutFingerprints: a record persisted before the
// fingerprints existed still decodes, with none; one with them keeps them.
func TestSessionRecordWithoutFingerprints(t *testing.T) {
	old := `{"uid":"alice","ip":"192.0.2.1","ct":"2026-01-01T00:00:00Z","ut":"2026-01-01T00:00:00Z","at":"2026-01-01T00:00:00Z","et":"2026-01-02T00:00:00Z","st":"authenticated","v":3}`
	var s Session
	if err := json.Unmarshal([]byte(old), &s); err != nil || s.UserID != "alice" || s.Fingerprints != nil || s.Version != 3 {
		t.Fatalf("old record: %+v %v", s, err)
	}
	s.Fingerprints = []Fingerprint{{Cookie: "c", Fingerprint: "f", CookieType: "1"}}
	b, _ := json.Marshal(&s)
	var back Session
	if err := json.Unmarshal(b, &back); err != nil || !equalSessions(&s, &back) {
		t.Fatalf("round trip: %s → %+v %v", b, back, err)
	}
}
