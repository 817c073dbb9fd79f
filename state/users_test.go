package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestUsersExampleFile(t *testing.T) {
	us, err := LoadUsers(filepath.Join("..", "users.example.json"), false)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := us.CheckPassword("DEMO", "demo-password")
	if !ok || u.ID != "demo" || u.Mail != "demo@example.com" || u.TOTPSecret != demoSecret ||
		!u.HasFactor(FactorEmail) || !u.HasFactor(FactorTOTP) || u.HasFactor(FactorSMS) {
		t.Fatalf("demo user: %+v %v", u, ok)
	}
	if _, ok := us.CheckPassword("demo", "wrong"); ok {
		t.Fatal("wrong password accepted")
	}
	if _, ok := us.CheckPassword("nobody", "demo-password"); ok {
		t.Fatal("unknown user accepted")
	}
}

func writeUsers(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadUsersErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"not json", `{"users": [`, "unexpected EOF"},
		{"unknown field", `{"users": [{"id":"a","login":"a","pasword":"x"}]}`, "unknown field"},
		{"missing id", `{"users": [{"login":"a"}]}`, "missing id"},
		{"missing login", `{"users": [{"id":"a"}]}`, "missing login"},
		{"duplicate id", `{"users": [{"id":"a","login":"a"},{"id":"a","login":"b"}]}`, "duplicate id"},
		{"duplicate login by case", `{"users": [{"id":"a","login":"Ann"},{"id":"b","login":"ann"}]}`, "duplicate login"},
		{"unknown factor", `{"users": [{"id":"a","login":"a","factors":["ChallengePigeon"]}]}`, "unknown factor"},
		{"bad totp", `{"users": [{"id":"a","login":"a","totp_secret":"!!"}]}`, "base32"},
		{"totp factor without secret", `{"users": [{"id":"a","login":"a","factors":["ChallengeOMATOTP"]}]}`, "needs a totp_secret"},
		{"bad hash", `{"users": [{"id":"a","login":"a","password_hash":"plain"}]}`, "not a bcrypt hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeUsers(t, tt.body)
			_, err := LoadUsers(p, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error = %v, want one naming %s and saying %q", err, p, tt.want)
			}
		})
	}
	missing := filepath.Join(t.TempDir(), "none.json")
	if _, err := LoadUsers(missing, false); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing file: %v", err)
	}
	us, err := LoadUsers(missing, true)
	if err != nil || us.Len() != 0 {
		t.Fatalf("missing file with create: %v", err)
	}
}

func TestUsersMutateAndSave(t *testing.T) {
	p := filepath.Join(t.TempDir(), "users.json")
	us, err := LoadUsers(p, true)
	if err != nil {
		t.Fatal(err)
	}
	us.Cost = bcrypt.MinCost
	if err := us.Add(User{ID: "u1", Login: "Alice", Mail: "alice@example.com", Factors: []string{FactorEmail}}, "pw1"); err != nil {
		t.Fatal(err)
	}
	if err := us.Add(User{ID: "u2", Login: "alice"}, ""); err == nil {
		t.Fatal("duplicate login accepted")
	}
	if err := us.Add(User{ID: "u1", Login: "bob"}, ""); err == nil {
		t.Fatal("duplicate id accepted")
	}
	if err := us.Add(User{ID: "u3", Login: "carol", Factors: []string{"nope"}}, ""); err == nil {
		t.Fatal("unknown factor accepted")
	}
	if err := us.SetPassword("alice", "pw2"); err != nil {
		t.Fatal(err)
	}
	if err := us.SetTOTP("u1", "jbsw y3dp ehpk 3pxp"); err != nil {
		t.Fatal(err)
	}
	if err := us.SetTOTP("u1", "bad!"); err == nil {
		t.Fatal("bad secret accepted")
	}
	if err := us.SetPassword("nobody", "x"); !errors.Is(err, ErrUserNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := us.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved file mode %v, %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	raw, _ := os.ReadFile(p)
	if strings.Contains(string(raw), "pw2") {
		t.Fatal("plain password in the file")
	}

	again, err := LoadUsers(p, false)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := again.CheckPassword("ALICE", "pw2")
	if !ok || u.TOTPSecret != demoSecret || !u.HasFactor(FactorTOTP) || !u.HasFactor(FactorEmail) {
		t.Fatalf("reloaded: %+v %v", u, ok)
	}
	if _, ok := again.CheckPassword("alice", "pw1"); ok {
		t.Fatal("old password still valid")
	}
	if err := again.SetTOTP("alice", ""); err != nil {
		t.Fatal(err)
	}
	if u, _ := again.ByID("u1"); u.HasFactor(FactorTOTP) || u.TOTPSecret != "" {
		t.Fatalf("totp not removed: %+v", u)
	}
	if got := again.All(); len(got) != 1 || got[0].Login != "Alice" {
		t.Fatalf("All = %+v", got)
	}
	// Lookups hand out copies.
	u, _ = again.Lookup("u1")
	u.Factors[0] = "changed"
	if u2, _ := again.Lookup("Alice"); u2.Factors[0] != FactorEmail {
		t.Fatal("lookup returned shared state")
	}
}

func TestCheckPasswordUserWithoutPassword(t *testing.T) {
	p := writeUsers(t, `{"users":[{"id":"a","login":"a"}]}`)
	us, err := LoadUsers(p, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := us.CheckPassword("a", ""); ok {
		t.Fatal("empty password accepted for a user without one")
	}
}

func FuzzParseUsers(f *testing.F) {
	f.Add([]byte(`{"users":[{"id":"a","login":"a","factors":["ChallengeEmail"],"totp_secret":"JBSWY3DPEHPK3PXP"}]}`))
	f.Add([]byte(`{"users":[{"id":"a","login":"a","password_hash":"$2a$04$abcdefghijklmnopqrstuu"}]}`))
	f.Add([]byte(`{"users":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		us, err := parseUsers("fuzz.json", b)
		if err != nil {
			return
		}
		for _, u := range us.All() {
			if got, ok := us.ByID(u.ID); !ok || got.Login != u.Login {
				t.Fatalf("loaded user %q not found by id", u.ID)
			}
		}
	})
}
