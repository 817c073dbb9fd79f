package state

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"
)

var otpKey = []byte("0123456789abcdef0123456789abcdef")

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newOTPSession(t *testing.T) *Session {
	t.Helper()
	s := NewSession(NewID(), nil, t0, 8*time.Hour, 0)
	if err := s.SetStatus(StatusPendingVerification, t0, "", 0); err != nil {
		t.Fatal(err)
	}
	return s
}

func wrongOf(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestOTPPolicyDefaultsAndValidate(t *testing.T) {
	p := OTPPolicy{}.Defaults()
	if p.Digits != 6 || p.Lifetime != 5*time.Minute || p.MaxAttempts != 5 || p.BlockFor != 15*time.Minute ||
		p.Cooldown != 30*time.Second || p.SendsPerHour != 10 {
		t.Fatalf("defaults = %+v", p)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []OTPPolicy{
		{Digits: 3, Lifetime: 1, MaxAttempts: 1, BlockFor: 1},
		{Digits: 11, Lifetime: 1, MaxAttempts: 1, BlockFor: 1},
		{Digits: 6, Lifetime: -1, MaxAttempts: 1, BlockFor: 1},
		{Digits: 6, Lifetime: 1, MaxAttempts: -1, BlockFor: 1},
		{Digits: 6, Lifetime: 1, MaxAttempts: 1, BlockFor: -1},
		{Digits: 6, Lifetime: 1, MaxAttempts: 1, BlockFor: 1, Cooldown: -1},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want an error", bad)
		}
	}
}

func TestNewOTPShapeAndSpread(t *testing.T) {
	for _, n := range []int{1, 4, 6, 8, 10, 18} {
		re := regexp.MustCompile("^[0-9]{" + itoa(n) + "}$")
		for range 50 {
			if c := NewOTP(n); !re.MatchString(c) {
				t.Fatalf("NewOTP(%d) = %q", n, c)
			}
		}
	}
	// Every first digit shows up: a broken generator (constant, or biased
	// to small values) fails this with overwhelming probability.
	var seen [10]bool
	for range 2000 {
		seen[NewOTP(6)[0]-'0'] = true
	}
	for d, ok := range seen {
		if !ok {
			t.Errorf("first digit %d never generated in 2000 codes", d)
		}
	}
}

func itoa(n int) string {
	if n >= 10 {
		return string(rune('0'+n/10)) + string(rune('0'+n%10))
	}
	return string(rune('0' + n))
}

func TestOTPIssueStoresOnlyHash(t *testing.T) {
	p := OTPPolicy{}.Defaults()
	s := newOTPSession(t)
	code, exp, err := p.Issue(s, otpKey, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("expiresAt = %v", exp)
	}
	enc, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(code).Match(enc) {
		t.Fatalf("encoded session contains the code: %s", enc)
	}
	if !s.HasLiveOTP(t0) || s.HasLiveOTP(exp) {
		t.Error("HasLiveOTP wrong around expiry")
	}
	// The hash is bound to the session: another session's hash differs.
	other := newOTPSession(t)
	if string(OTPHash(otpKey, other.Key, code)) == string(s.Challenge.AnswerHash) {
		t.Error("hash not bound to the session key")
	}
	if _, _, err := p.Issue(s, nil, t0.Add(time.Hour)); err == nil {
		t.Error("Issue with an empty key succeeded")
	}
}

// step is one action of a scripted OTP scenario.
type step struct {
	at     time.Duration // since t0
	issue  bool          // issue a new code (want error wantErr)
	answer string        // "right", "wrong", or a literal
	want   OTPResult
	status Status
	// wantErr for issue steps: nil, ErrOTPCooldown or errBlocked.
	wantErr error
}

var errBlocked = errors.New("blocked")

func TestOTPScenarios(t *testing.T) {
	p := OTPPolicy{MaxAttempts: 3}.Defaults()
	tests := []struct {
		name  string
		steps []step
	}{
		{"right answer authenticates", []step{
			{issue: true},
			{at: time.Minute, answer: "right", want: OTPOK, status: StatusAuthenticated},
		}},
		{"used code is refused", []step{
			{issue: true},
			{at: time.Minute, answer: "right", want: OTPOK, status: StatusAuthenticated},
			{at: 2 * time.Minute, answer: "right", want: OTPUsed, status: StatusAuthenticated},
		}},
		{"expired code is refused without counting", []step{
			{issue: true},
			{at: 5 * time.Minute, answer: "right", want: OTPExpired, status: StatusPendingVerification},
			{at: 5 * time.Minute, answer: "wrong", want: OTPExpired, status: StatusPendingVerification},
		}},
		{"just before expiry is fine", []step{
			{issue: true},
			{at: 5*time.Minute - time.Nanosecond, answer: "right", want: OTPOK, status: StatusAuthenticated},
		}},
		{"wrong then right", []step{
			{issue: true},
			{answer: "wrong", want: OTPWrong, status: StatusPendingVerification},
			{answer: "12345", want: OTPWrong, status: StatusPendingVerification},
			{answer: "right", want: OTPOK, status: StatusAuthenticated},
		}},
		{"no code issued", []step{
			{answer: "123456", want: OTPNone, status: StatusPendingVerification},
		}},
		{"block after max attempts, and its end", []step{
			{issue: true},
			{answer: "wrong", want: OTPWrong, status: StatusPendingVerification},
			{answer: "wrong", want: OTPWrong, status: StatusPendingVerification},
			{answer: "wrong", want: OTPBlocked, status: StatusChallengeBlocked},
			{at: time.Minute, answer: "right", want: OTPBlocked, status: StatusChallengeBlocked},
			{at: time.Minute, issue: true, wantErr: errBlocked},
			{at: 15*time.Minute - time.Nanosecond, answer: "right", want: OTPBlocked, status: StatusChallengeBlocked},
			// The block is over, the burned code stays burned.
			{at: 15 * time.Minute, answer: "right", want: OTPNone, status: StatusPendingVerification},
			{at: 15 * time.Minute, issue: true},
			{at: 16 * time.Minute, answer: "wrong", want: OTPWrong, status: StatusPendingVerification},
			{at: 16 * time.Minute, answer: "right", want: OTPOK, status: StatusAuthenticated},
		}},
		{"resend cool-down", []step{
			{issue: true},
			{at: 29 * time.Second, issue: true, wantErr: ErrOTPCooldown},
			{at: 30 * time.Second, issue: true},
			{at: 31 * time.Second, answer: "right", want: OTPOK, status: StatusAuthenticated},
		}},
		{"a new code resets the attempts and replaces the old", []step{
			{issue: true},
			{answer: "wrong", want: OTPWrong, status: StatusPendingVerification},
			{answer: "wrong", want: OTPWrong, status: StatusPendingVerification},
			{at: time.Minute, issue: true},
			{at: time.Minute, answer: "wrong", want: OTPWrong, status: StatusPendingVerification},
			{at: time.Minute, answer: "wrong", want: OTPWrong, status: StatusPendingVerification},
			{at: time.Minute, answer: "right", want: OTPOK, status: StatusAuthenticated},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newOTPSession(t)
			var code string
			for i, st := range tt.steps {
				now := t0.Add(st.at)
				if st.issue {
					c, _, err := p.Issue(s, otpKey, now)
					switch {
					case st.wantErr == errBlocked:
						if _, ok := errors.AsType[*BlockedError](err); !ok {
							t.Fatalf("step %d: Issue error = %v, want a block", i, err)
						}
					case st.wantErr != nil:
						var re *RetryError
						if !errors.Is(err, st.wantErr) || !errors.As(err, &re) {
							t.Fatalf("step %d: Issue error = %v, want %v", i, err, st.wantErr)
						}
					case err != nil:
						t.Fatalf("step %d: Issue: %v", i, err)
					default:
						code = c
					}
					continue
				}
				ans := st.answer
				switch ans {
				case "right":
					ans = code
				case "wrong":
					ans = wrongOf(code)
				}
				if got := p.Verify(s, otpKey, ans, now); got != st.want {
					t.Fatalf("step %d: Verify = %v, want %v", i, got, st.want)
				}
				if got := s.EffectiveStatus(now); got != st.status {
					t.Fatalf("step %d: status = %q, want %q", i, got, st.status)
				}
			}
		})
	}
}

func TestOTPBlockRecordsReasonAndFactor(t *testing.T) {
	p := OTPPolicy{MaxAttempts: 1, BlockFor: time.Minute}.Defaults()
	s := newOTPSession(t)
	code, _, _ := p.Issue(s, otpKey, t0)
	if got := p.Verify(s, otpKey, wrongOf(code), t0); got != OTPBlocked {
		t.Fatalf("Verify = %v", got)
	}
	if s.StatusReason != ReasonTooManyAttempts || !s.BlockedUntil.Equal(t0.Add(time.Minute)) {
		t.Fatalf("reason %q until %v", s.StatusReason, s.BlockedUntil)
	}
	s2 := newOTPSession(t)
	s2.Challenge = &Challenge{Factor: "ChallengeEmail"}
	code, _, _ = p.Issue(s2, otpKey, t0)
	if got := p.Verify(s2, otpKey, code, t0); got != OTPOK {
		t.Fatalf("Verify = %v", got)
	}
	if len(s2.Factors) != 1 || s2.Factors[0] != "ChallengeEmail" || !s2.AuthTime.Equal(t0) {
		t.Fatalf("factors %v authTime %v", s2.Factors, s2.AuthTime)
	}
}

func TestOTPAllowSend(t *testing.T) {
	p := OTPPolicy{SendsPerHour: 3}.Defaults()
	u := &UserState{UserID: "u"}
	for i := range 3 {
		if err := p.AllowSend(u, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	err := p.AllowSend(u, t0.Add(10*time.Minute))
	var re *RetryError
	if !errors.Is(err, ErrOTPSendLimit) || !errors.As(err, &re) || !re.After.Equal(t0.Add(time.Hour)) {
		t.Fatalf("4th send: %v", err)
	}
	if len(u.OTPSends) != 3 {
		t.Fatalf("refusal changed the record: %d sends", len(u.OTPSends))
	}
	if err := p.AllowSend(u, t0.Add(time.Hour+time.Second)); err != nil {
		t.Fatalf("after an hour: %v", err)
	}
	if len(u.OTPSends) != 3 {
		t.Fatalf("old sends not forgotten: %d", len(u.OTPSends))
	}
}

// TestOTPInsideStoreUpdate runs the engine the way the APIs do: inside the
// memory store's Update and UpdateUser callbacks.
func TestOTPInsideStoreUpdate(t *testing.T) {
	now := t0
	m := NewMemory(MemoryOptions{Now: func() time.Time { return now }})
	defer m.Close()
	ctx := context.Background()
	p := OTPPolicy{}.Defaults()
	s := newOTPSession(t)
	s.UserID = "alice"
	if err := m.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpdateUser(ctx, "alice", func(u *UserState) error { return p.AllowSend(u, now) }); err != nil {
		t.Fatal(err)
	}
	var code string
	if _, err := m.Update(ctx, s.Key, func(s *Session) (err error) {
		code, _, err = p.Issue(s, otpKey, now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var res OTPResult
	got, err := m.Update(ctx, s.Key, func(s *Session) error {
		res = p.Verify(s, otpKey, code, now)
		return nil
	})
	if err != nil || res != OTPOK || !got.Authenticated(now) {
		t.Fatalf("verify in Update: %v %v %v", res, err, got.Status)
	}
}

func TestEqualCode(t *testing.T) {
	if !equalCode("123456", "123456") || equalCode("123456", "123457") || equalCode("12345", "123456") {
		t.Fatal("equalCode")
	}
}
