package state

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPasskeysAddUseRemove(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	u := &UserState{UserID: "alice"}
	p := Passkey{ID: []byte{1, 2, 3}, PublicKey: []byte{9}, SignCount: 5, Name: "laptop", Created: now}
	if err := u.AddPasskey(p); err != nil {
		t.Fatal(err)
	}
	if err := u.AddPasskey(p); !errors.Is(err, ErrPasskeyExists) {
		t.Errorf("second add of the same id: %v, want ErrPasskeyExists", err)
	}
	if err := u.AddPasskey(Passkey{ID: []byte{4}}); err == nil {
		t.Error("a passkey without a public key was accepted")
	}
	c := u.Clone()
	c.Passkeys[0].ID[0] = 7
	c.Passkeys[0].SignCount = 99
	if u.Passkeys[0].ID[0] != 1 || u.Passkeys[0].SignCount != 5 {
		t.Error("Clone shares the passkeys")
	}
	if err := u.UsePasskey([]byte{1, 2, 3}, 5, true, false, false, now); !errors.Is(err, ErrSignCount) {
		t.Errorf("same counter: %v, want ErrSignCount", err)
	}
	if err := u.UsePasskey([]byte{1, 2, 3}, 4, true, false, false, now); !errors.Is(err, ErrSignCount) {
		t.Errorf("lower counter: %v, want ErrSignCount", err)
	}
	if u.Passkeys[0].SignCount != 5 || !u.Passkeys[0].LastUsed.IsZero() {
		t.Error("a refused use changed the passkey")
	}
	if err := u.UsePasskey([]byte{1, 2, 3}, 6, true, true, false, now); err != nil {
		t.Fatal(err)
	}
	if got := u.Passkeys[0]; got.SignCount != 6 || !got.UserVerified || !got.BackupEligible || !got.LastUsed.Equal(now) {
		t.Errorf("after use: %+v", got)
	}
	if err := u.UsePasskey([]byte{8}, 1, true, false, false, now); !errors.Is(err, ErrUnknownPasskey) {
		t.Errorf("unknown id: %v", err)
	}
	// Authenticators without a counter (always 0) are accepted.
	z := &UserState{}
	_ = z.AddPasskey(Passkey{ID: []byte{1}, PublicKey: []byte{1}})
	for range 2 {
		if err := z.UsePasskey([]byte{1}, 0, false, false, false, now); err != nil {
			t.Errorf("counter 0 on a counterless passkey: %v", err)
		}
	}
	if !u.RemovePasskey([]byte{1, 2, 3}) || u.RemovePasskey([]byte{1, 2, 3}) || u.Passkeys != nil {
		t.Error("RemovePasskey")
	}
	for i := range MaxPasskeys {
		if err := u.AddPasskey(Passkey{ID: []byte{byte(i)}, PublicKey: []byte{1}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.AddPasskey(Passkey{ID: []byte("x"), PublicKey: []byte{1}}); !errors.Is(err, ErrTooManyPasskeys) {
		t.Errorf("past the limit: %v", err)
	}
}

func TestCeremoniesSingleUseBoundExpiring(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	u := &UserState{}
	u.StartCeremony("c1", Ceremony{Kind: "login", Binding: "s1", Data: []byte(`{}`)}, now)
	if _, err := u.TakeCeremony("c1", "login", "s2", now); !errors.Is(err, ErrNoCeremony) {
		t.Errorf("another session's take: %v", err)
	}
	if _, err := u.TakeCeremony("c1", "login", "s1", now); !errors.Is(err, ErrNoCeremony) {
		t.Error("a ceremony survived a take with a wrong binding")
	}
	u.StartCeremony("c2", Ceremony{Kind: "login", Binding: "s1", Data: []byte(`{"a":1}`)}, now)
	if _, err := u.TakeCeremony("c2", "register", "s1", now); !errors.Is(err, ErrNoCeremony) {
		t.Error("a login ceremony was taken as a registration")
	}
	u.StartCeremony("c3", Ceremony{Kind: "login", Binding: "s1", Data: []byte(`{"a":1}`)}, now)
	c := u.Clone()
	c.Ceremonies["c3"].Data[0] = 'x'
	got, err := u.TakeCeremony("c3", "login", "s1", now.Add(CeremonyTTL-time.Second))
	if err != nil || !bytes.Equal(got.Data, []byte(`{"a":1}`)) {
		t.Fatalf("take: %v %q", err, got.Data)
	}
	if _, err := u.TakeCeremony("c3", "login", "s1", now); !errors.Is(err, ErrNoCeremony) {
		t.Error("a ceremony was taken twice")
	}
	u.StartCeremony("c4", Ceremony{Kind: "login", Binding: "s1"}, now)
	if _, err := u.TakeCeremony("c4", "login", "s1", now.Add(CeremonyTTL)); !errors.Is(err, ErrNoCeremony) {
		t.Error("an expired ceremony was taken")
	}
	if u.Ceremonies != nil {
		t.Errorf("ceremonies left: %v", u.Ceremonies)
	}
	for i := range MaxCeremonies + 3 {
		u.StartCeremony(strings.Repeat("k", i+1), Ceremony{Kind: "login"}, now.Add(time.Duration(i)*time.Second))
	}
	if len(u.Ceremonies) != MaxCeremonies {
		t.Errorf("%d ceremonies kept, want %d", len(u.Ceremonies), MaxCeremonies)
	}
	if _, ok := u.Ceremonies["k"]; ok {
		t.Error("the oldest ceremony was kept past the limit")
	}
}

func TestRecoveryCodes(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	codes, hashes := NewRecoveryCodes()
	if len(codes) != RecoveryCodeCount || len(hashes) != RecoveryCodeCount {
		t.Fatalf("%d codes", len(codes))
	}
	seen := map[string]bool{}
	for i, c := range codes {
		if len(c) != 19 || seen[c] || strings.Contains(hashes[i], c) {
			t.Errorf("code %q", c)
		}
		seen[c] = true
	}
	u := &UserState{}
	u.SetRecoveryCodes(hashes, now)
	for _, h := range u.Recovery {
		if seen[h] {
			t.Error("a code is stored in clear")
		}
	}
	if !u.UseRecoveryCode(strings.ToUpper(strings.ReplaceAll(codes[3], "-", " "))) {
		t.Error("a code in capitals with spaces was refused")
	}
	if u.UseRecoveryCode(codes[3]) {
		t.Error("a code worked twice")
	}
	if u.UseRecoveryCode("aaaa-aaaa-aaaa-aaaa") || u.UseRecoveryCode("") || u.UseRecoveryCode(hashes[0]) {
		t.Error("a wrong code was accepted")
	}
	if len(u.Recovery) != RecoveryCodeCount-1 {
		t.Errorf("%d codes left", len(u.Recovery))
	}
	newCodes, newHashes := NewRecoveryCodes()
	u.SetRecoveryCodes(newHashes, now)
	if u.UseRecoveryCode(codes[0]) {
		t.Error("a code of a revoked set worked")
	}
	if !u.UseRecoveryCode(newCodes[0]) {
		t.Error("a code of the new set was refused")
	}
}

// TestMemoryKeepsRegisteredFactors: the memory store's sweep of idle user
// states keeps a user's passkeys and recovery codes.
func TestMemoryKeepsRegisteredFactors(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := t.Context()
	if _, err := m.UpdateUser(ctx, "pk", func(u *UserState) error {
		return u.AddPasskey(Passkey{ID: []byte{1}, PublicKey: []byte{2}})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpdateUser(ctx, "rc", func(u *UserState) error {
		_, h := NewRecoveryCodes()
		u.SetRecoveryCodes(h, clk.Now())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpdateUser(ctx, "none", func(u *UserState) error {
		u.StartCeremony("c", Ceremony{Kind: "login"}, clk.Now())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(UserStateRetention + time.Minute)
	m.sweepUsers()
	for _, id := range []string{"pk", "rc"} {
		if _, err := m.GetUser(ctx, id); err != nil {
			t.Errorf("state of %q dropped: %v", id, err)
		}
	}
	if _, err := m.GetUser(ctx, "none"); err == nil {
		t.Error("an idle state holding only a ceremony was kept")
	}
}
