package state

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestUsersFileName: the users file may carry a display name; the file's
// directory gives it, and a session bound to the user keeps it as the
// attribute "name" (the login standing in when there is none).
func TestUsersFileName(t *testing.T) {
	p := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(p, []byte(`{"users":[{"id":"u1","login":"ann","name":"Ann Example"},{"id":"u2","login":"ben"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	us, err := LoadUsers(p, false)
	if err != nil {
		t.Fatal(err)
	}
	u, ok, err := us.Directory("file").Lookup(context.Background(), "ANN")
	if err != nil || !ok || u.Name != "Ann Example" {
		t.Fatalf("ann = %+v, %v, %v", u, ok, err)
	}
	s := NewSession(NewID(), nil, time.Now(), time.Hour, time.Hour)
	s.UserID, s.LoginName = u.ID, u.Login
	if s.DisplayName() != "ann" {
		t.Fatalf("display name before it is set: %q", s.DisplayName())
	}
	s.SetDisplayName(u.Name)
	if s.UserAttributes[NameAttribute] != "Ann Example" || s.DisplayName() != "Ann Example" {
		t.Fatalf("display name %q, attributes %v", s.DisplayName(), s.UserAttributes)
	}
	s.SetDisplayName("")
	if s.DisplayName() != "Ann Example" {
		t.Fatal("an empty name replaced the one set")
	}
	ben, _ := us.ByID("u2")
	if ben.Name != "" {
		t.Fatalf("ben has a name %q", ben.Name)
	}
}
