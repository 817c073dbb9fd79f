package state

import (
	"bytes"
	"image/png"
	"net/url"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

const demoSecret = "JBSWY3DPEHPK3PXP"

// appCode is what an authenticator app shows at t.
func appCode(t *testing.T, secret string, at time.Time, digits otp.Digits) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: digits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTOTPCheck(t *testing.T) {
	p := TOTPPolicy{}.Defaults()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // a step boundary
	tests := []struct {
		name    string
		codeAt  time.Duration // when the app made the code, from base
		checkAt time.Duration // when the server checks it
		want    TOTPResult
	}{
		{"same step", 5 * time.Second, 20 * time.Second, TOTPOK},
		{"one step behind", 0, 45 * time.Second, TOTPOK},
		{"one step ahead", 40 * time.Second, 10 * time.Second, TOTPOK},
		{"two steps behind", 0, 61 * time.Second, TOTPWrong},
		{"two steps ahead", 65 * time.Second, 5 * time.Second, TOTPWrong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &UserState{UserID: "u"}
			code := appCode(t, demoSecret, base.Add(tt.codeAt), otp.DigitsSix)
			got, err := p.Check(u, demoSecret, code, base.Add(tt.checkAt))
			if err != nil || got != tt.want {
				t.Fatalf("Check = %v, %v; want %v", got, err, tt.want)
			}
			if got == TOTPOK && u.TOTPStep != uint64(base.Add(tt.codeAt).Unix()/30) {
				t.Fatalf("recorded step %d", u.TOTPStep)
			}
		})
	}
}

func TestTOTPReplay(t *testing.T) {
	p := TOTPPolicy{}.Defaults()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	u := &UserState{UserID: "u"}
	c1 := appCode(t, demoSecret, base, otp.DigitsSix)
	if r, _ := p.Check(u, demoSecret, c1, base); r != TOTPOK {
		t.Fatalf("first use: %v", r)
	}
	// The same code, still within its window (and the skew), is refused.
	for _, at := range []time.Duration{time.Second, 29 * time.Second, 45 * time.Second} {
		if r, _ := p.Check(u, demoSecret, c1, base.Add(at)); r != TOTPReplay {
			t.Fatalf("replay at +%v: %v", at, r)
		}
	}
	// An older code still inside the skew is refused too: the step went on.
	u2 := &UserState{UserID: "u2"}
	c2 := appCode(t, demoSecret, base.Add(30*time.Second), otp.DigitsSix)
	if r, _ := p.Check(u2, demoSecret, c2, base.Add(30*time.Second)); r != TOTPOK {
		t.Fatal(r)
	}
	if r, _ := p.Check(u2, demoSecret, c1, base.Add(31*time.Second)); r != TOTPReplay {
		t.Fatalf("older code after a newer one: %v", r)
	}
	// The next step's code is fine.
	c3 := appCode(t, demoSecret, base.Add(60*time.Second), otp.DigitsSix)
	if r, _ := p.Check(u2, demoSecret, c3, base.Add(60*time.Second)); r != TOTPOK {
		t.Fatalf("next step: %v", r)
	}
}

func TestTOTPSecretForms(t *testing.T) {
	p := TOTPPolicy{Digits: 8, Skew: -1}.Defaults()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC)
	code := appCode(t, demoSecret, at, otp.DigitsEight)
	for _, form := range []string{demoSecret, "jbsw y3dp ehpk 3pxp", " JBSWY3DPEHPK3PXP===="} {
		u := &UserState{}
		if r, err := p.Check(u, form, code, at); r != TOTPOK || err != nil {
			t.Errorf("secret %q: %v %v", form, r, err)
		}
	}
	// No skew: the previous step's code is wrong.
	if r, _ := p.Check(&UserState{}, demoSecret, appCode(t, demoSecret, at.Add(-30*time.Second), otp.DigitsEight), at); r != TOTPWrong {
		t.Errorf("skew -1 accepted the previous step: %v", r)
	}
	for _, bad := range []string{"", "not base32!", "JBSWY3DP"} {
		if _, err := p.Check(&UserState{}, bad, "12345678", at); err == nil {
			t.Errorf("secret %q accepted", bad)
		}
	}
	got, err := p.Code(demoSecret, at)
	if err != nil || got != code {
		t.Errorf("Code = %q %v, want %q", got, err, code)
	}
}

func TestTOTPPolicyValidate(t *testing.T) {
	for _, bad := range []TOTPPolicy{
		{Period: 1500 * time.Millisecond, Digits: 6},
		{Period: 30 * time.Second, Digits: 7},
		{Period: 30 * time.Second, Digits: 6, Skew: 11},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", bad)
		}
	}
}

func TestTOTPEnroll(t *testing.T) {
	p := TOTPPolicy{Issuer: "Example Co"}.Defaults()
	e, err := p.Enroll("demo", demoSecret)
	if err != nil {
		t.Fatal(err)
	}
	if e.Secret != demoSecret {
		t.Errorf("secret %q", e.Secret)
	}
	u, err := url.Parse(e.URI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != demoSecret ||
		u.Query().Get("issuer") != "Example Co" || u.Path != "/Example Co:demo" {
		t.Errorf("uri %q", e.URI)
	}
	img, err := png.Decode(bytes.NewReader(e.PNG))
	if err != nil || img.Bounds().Dx() != QRSize {
		t.Fatalf("png: %v", err)
	}

	fresh, err := p.Enroll("alice", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeTOTPSecret(fresh.Secret)
	if err != nil || len(b) != 20 {
		t.Fatalf("fresh secret %d bytes, %v", len(b), err)
	}
	again, _ := p.Enroll("alice", "")
	if again.Secret == fresh.Secret {
		t.Fatal("two fresh secrets are equal")
	}
	// The fresh secret works end to end.
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if r, _ := p.Check(&UserState{}, fresh.Secret, appCode(t, fresh.Secret, at, otp.DigitsSix), at); r != TOTPOK {
		t.Fatalf("fresh secret check: %v", r)
	}
	if _, err := p.Enroll("", ""); err == nil {
		t.Error("enrolment without account accepted")
	}
	if _, err := p.Enroll("x", "!!"); err == nil {
		t.Error("enrolment with bad secret accepted")
	}
}
