package state

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// failingStore is a store whose per-user state cannot be read.
type failingStore struct{ Store }

func (failingStore) GetUser(context.Context, string) (*UserState, error) {
	return nil, errors.New("connection refused")
}

func TestWithStoredTOTP(t *testing.T) {
	us, err := LoadUsers(filepath.Join(t.TempDir(), "users.json"), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := us.Add(User{ID: "u1", Login: "alice", Mail: "a@example.com", Factors: []string{FactorEmail}}, "pw-alice"); err != nil {
		t.Fatal(err)
	}
	if err := us.Add(User{ID: "u2", Login: "bob", TOTPSecret: "JBSWY3DPEHPK3PXP", Factors: []string{FactorTOTP}}, "pw-bob"); err != nil {
		t.Fatal(err)
	}
	st := NewMemory(MemoryOptions{})
	defer st.Close()
	ctx := context.Background()
	d := WithStoredTOTP(us.Directory("corp"), st)
	u, ok, err := d.Lookup(ctx, "alice")
	if err != nil || !ok || u.TOTPSecret != "" || u.HasFactor(FactorTOTP) {
		t.Fatalf("alice before enrolment: %+v %v %v", u, ok, err)
	}
	if err := SetStoredTOTP(ctx, st, "u1", "not base32!"); !errors.Is(err, ErrBadTOTPSecret) {
		t.Fatalf("a bad secret: %v", err)
	}
	if err := SetStoredTOTP(ctx, st, "u1", "gezdgnbvgy3tqojq"); err != nil {
		t.Fatal(err)
	}
	for _, check := range []func() (User, bool, error){
		func() (User, bool, error) { return d.Lookup(ctx, "ALICE") },
		func() (User, bool, error) { return d.CheckPassword(ctx, "alice", "pw-alice") },
	} {
		u, ok, err := check()
		if err != nil || !ok || u.TOTPSecret != "GEZDGNBVGY3TQOJQ" || !u.HasFactor(FactorTOTP) || !u.HasFactor(FactorEmail) || u.Store != "corp" {
			t.Fatalf("alice after enrolment: %+v %v %v", u, ok, err)
		}
	}
	if _, ok, err := d.CheckPassword(ctx, "alice", "wrong"); ok || err != nil {
		t.Fatalf("wrong password: %v %v", ok, err)
	}
	// A secret of the identity store's own wins.
	if err := SetStoredTOTP(ctx, st, "u2", "GEZDGNBVGY3TQOJQ"); err != nil {
		t.Fatal(err)
	}
	if u, _, _ := d.Lookup(ctx, "bob"); u.TOTPSecret != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("bob's own secret replaced: %+v", u)
	}
	if err := SetStoredTOTP(ctx, st, "u1", ""); err != nil {
		t.Fatal(err)
	}
	if u, _, _ := d.Lookup(ctx, "alice"); u.TOTPSecret != "" || u.HasFactor(FactorTOTP) {
		t.Fatalf("alice after removal: %+v", u)
	}
	// A store that cannot answer is not "no TOTP".
	bad := WithStoredTOTP(us.Directory("corp"), failingStore{st})
	if _, ok, err := bad.Lookup(ctx, "alice"); ok || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("failing store: %v %v", ok, err)
	}
	if _, ok, err := bad.Lookup(ctx, "nobody"); ok || err != nil {
		t.Fatalf("an unknown user needs no store: %v %v", ok, err)
	}
}
