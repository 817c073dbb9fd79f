package state

import (
	"reflect"
	"testing"
	"time"
)

func TestSessionCodecRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	as, ct := 3, -7
	full := NewSession(NewID(), nil, now, time.Hour, 10*time.Minute)
	full.SealedID = []byte{1, 2, 3}
	full.UserID, full.LoginName, full.GroupName, full.IDStoreName, full.ClientIP = "u", "login", "g", "ids", "192.0.2.1"
	full.IsImpersonating = true
	full.UserAttributes = map[string]string{"mail": "u@example.com", "": "empty key"}
	full.BlockedUntil = now.Add(time.Hour)
	full.StatusReason = "r"
	full.AuthenticationStatus, full.ClientType = &as, &ct
	full.ClientApplication, full.ClientVersion, full.ExternalDeviceID = "app", "1.0", "dev"
	full.AuthTime = now.Local()
	full.Factors = []string{"pwd", "otp"}
	full.Challenge = &Challenge{
		CorrelationID: "c", Factor: "f", NonceHash: []byte{}, AnswerHash: []byte{9},
		Expiry: now, Attempts: 2, Closed: true, OTPIssued: now, OTPUsed: true,
	}
	full.Version = 1 << 40
	empty := &Session{Factors: []string{}, UserAttributes: map[string]string{}}
	for name, s := range map[string]*Session{"full": full, "zero": {}, "empty": empty} {
		b := AppendSession([]byte("prefix"), s)
		got, err := DecodeSession(b[len("prefix"):])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("%s: decoded %+v, want %+v", name, got, s)
		}
		if s == full {
			// Other zones keep the instant and the offset (not the name).
			z := *s
			z.ExpiryTime = now.In(time.FixedZone("X", 3600))
			got, err := DecodeSession(AppendSession(nil, &z))
			if err != nil || !got.ExpiryTime.Equal(z.ExpiryTime) {
				t.Errorf("zoned time: %v, %v", got.ExpiryTime, err)
			} else if _, off := got.ExpiryTime.Zone(); off != 3600 {
				t.Errorf("zoned time lost its offset: %v", got.ExpiryTime)
			}
		}
		for i := range len(b) - len("prefix") {
			if _, err := DecodeSession(b[len("prefix") : len("prefix")+i]); err == nil {
				t.Fatalf("%s: truncated to %d bytes decodes", name, i)
			}
		}
	}
}
