package state

import (
	"context"
	"errors"
	"testing"
)

// downDirectory is an identity store that cannot answer.
type downDirectory struct{}

func (downDirectory) Name() string { return "down" }
func (downDirectory) Lookup(context.Context, string) (User, bool, error) {
	return User{}, false, errors.New("connection refused")
}

func (downDirectory) CheckPassword(context.Context, string, string) (User, bool, error) {
	return User{}, false, errors.New("connection refused")
}

func TestDirectoriesInOrder(t *testing.T) {
	ctx := context.Background()
	first := &Users{Cost: 4}
	if err := first.Add(User{ID: "a-1", Login: "alice"}, "first-pw"); err != nil {
		t.Fatal(err)
	}
	second := &Users{Cost: 4}
	for _, u := range []User{{ID: "a-2", Login: "alice"}, {ID: "b-2", Login: "bob"}} {
		if err := second.Add(u, "second-pw"); err != nil {
			t.Fatal(err)
		}
	}
	ds := Directories{first.Directory("one"), second.Directory("two")}
	if ds.Name() != "one" {
		t.Errorf("Name = %q", ds.Name())
	}
	// The first store that knows a login answers for it, for lookups and
	// for passwords: alice of "two" cannot sign in as alice of "one".
	if u, ok, err := ds.Lookup(ctx, "ALICE"); err != nil || !ok || u.ID != "a-1" {
		t.Errorf("Lookup(ALICE) = %v %v %v, want a-1", u.ID, ok, err)
	}
	if _, ok, _ := ds.CheckPassword(ctx, "alice", "second-pw"); ok {
		t.Error("alice signed in with the password of the second store's alice")
	}
	if u, ok, err := ds.CheckPassword(ctx, "alice", "first-pw"); err != nil || !ok || u.ID != "a-1" {
		t.Errorf("CheckPassword(alice) = %v %v %v", u.ID, ok, err)
	}
	if u, ok, err := ds.CheckPassword(ctx, "bob", "second-pw"); err != nil || !ok || u.ID != "b-2" {
		t.Errorf("CheckPassword(bob) = %v %v %v", u.ID, ok, err)
	}
	if _, ok, err := ds.CheckPassword(ctx, "nobody", "x"); ok || err != nil {
		t.Errorf("CheckPassword(nobody) = %v %v", ok, err)
	}
	if k, err := DirectoryKey(ctx, ds, " Bob "); err != nil || k != "b-2" {
		t.Errorf("DirectoryKey(Bob) = %q %v", k, err)
	}
	if k, err := DirectoryKey(ctx, ds, "Carol"); err != nil || k != "carol" {
		t.Errorf("DirectoryKey(Carol) = %q %v", k, err)
	}
	if UsersFileOf(ds) != first || UsersFileOf(downDirectory{}) != nil {
		t.Error("UsersFileOf does not find the first users file")
	}
}

// A store that cannot answer stops the lookup: neither "unknown user" nor a
// later store's user with the same name.
func TestDirectoryDownIsUnavailable(t *testing.T) {
	ctx := context.Background()
	later := &Users{Cost: 4}
	if err := later.Add(User{ID: "m-1", Login: "mallory"}, "pw-pw-pw"); err != nil {
		t.Fatal(err)
	}
	ds := Directories{downDirectory{}, later.Directory("later")}
	if _, ok, err := ds.CheckPassword(ctx, "mallory", "pw-pw-pw"); ok || err == nil {
		t.Errorf("CheckPassword with the first store down = %v %v, want an error", ok, err)
	}
	if _, err := DirectoryKey(ctx, ds, "mallory"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("DirectoryKey with the first store down: %v, want ErrUnavailable", err)
	}
	if _, err := DirectoryKey(ctx, ds, "bad\nname"); !errors.Is(err, ErrBadUserID) {
		t.Errorf("DirectoryKey(bad name): %v", err)
	}
}
