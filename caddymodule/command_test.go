package caddymodule

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

func runUserCmd(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	c := userCommand()
	var out bytes.Buffer
	c.SetIn(strings.NewReader(stdin))
	c.SetOut(&out)
	c.SetErr(&out)
	c.SetArgs(args)
	err := c.Execute()
	return out.String(), err
}

func TestUserCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "users.json")
	if _, err := runUserCmd(t, "first-pass\n", "add", "--file", file, "--login", "alice", "--mail", "alice@example.com",
		"--factor", "ChallengeEmail"); err != nil {
		t.Fatal(err)
	}
	if _, err := runUserCmd(t, "x\n", "add", "--file", file, "--login", "ALICE"); err == nil {
		t.Fatal("duplicate login accepted")
	}
	if _, err := runUserCmd(t, "x\n", "add", "--file", file, "--login", "bob", "--factor", "ChallengeFax"); err == nil {
		t.Fatal("unknown factor accepted")
	}
	if _, err := runUserCmd(t, "second-pass\n", "passwd", "--file", file, "--login", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := runUserCmd(t, "p\n", "passwd", "--file", file, "--login", "nobody"); err == nil {
		t.Fatal("passwd for an unknown user accepted")
	}
	qr := filepath.Join(dir, "alice.png")
	out, err := runUserCmd(t, "", "totp", "--file", file, "--login", "alice", "--qr", qr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "otpauth://totp/") || !strings.Contains(out, "secret: ") {
		t.Fatalf("totp output %q", out)
	}
	b, err := os.ReadFile(qr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}

	users, err := state.LoadUsers(file, false)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := users.CheckPassword("alice", "second-pass")
	if !ok || u.Mail != "alice@example.com" || !u.HasFactor(state.FactorTOTP) || !u.HasFactor(state.FactorEmail) {
		t.Fatalf("user %+v %v", u, ok)
	}
	secret := strings.TrimSpace(strings.SplitN(strings.SplitN(out, "secret: ", 2)[1], "\n", 2)[0])
	if u.TOTPSecret != secret {
		t.Fatalf("stored secret differs from the printed one")
	}
	// The printed secret works with the TOTP check.
	p := state.TOTPPolicy{}.Defaults()
	now := time.Now()
	code, _ := p.Code(secret, now)
	if r, _ := p.Check(&state.UserState{}, u.TOTPSecret, code, now); r != state.TOTPOK {
		t.Fatalf("enrolled secret does not verify: %v", r)
	}
	if _, err := runUserCmd(t, "", "totp", "--file", file, "--login", "alice", "--remove"); err != nil {
		t.Fatal(err)
	}
	users, _ = state.LoadUsers(file, false)
	if u, _ := users.ByLogin("alice"); u.TOTPSecret != "" || u.HasFactor(state.FactorTOTP) {
		t.Fatalf("totp not removed: %+v", u)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if _, err := runUserCmd(t, "", "passwd", "--login", "alice"); err == nil {
		t.Fatal("missing --file accepted")
	}
}
