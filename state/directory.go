package state

import (
	"context"
	"errors"
	"fmt"
)

// Directory is an identity store: where users, their addresses for codes
// and their passwords are kept. The users file is one kind (Users.Directory);
// others (LDAP, an identity provider) implement the same three methods.
//
// A directory that cannot answer (down, slow, refused the service bind)
// returns an error wrapping ErrUnavailable, never "no such user" and never
// "wrong password": callers answer 503 or their family's equivalent.
type Directory interface {
	// Name is the identity store's name, what the OAM API reports as a
	// session's idStoreName and takes as idStore.
	Name() string
	// Lookup finds a user by id or by login, as the directory compares
	// them (the users file: the id exactly, then id or login in any
	// letter case or Unicode form). ok is false when there is none.
	Lookup(ctx context.Context, idOrLogin string) (u User, ok bool, err error)
	// CheckPassword returns the user whose login (or id) and password
	// match. ok is false for an unknown user and for a wrong password
	// alike, in about the same time.
	CheckPassword(ctx context.Context, login, password string) (u User, ok bool, err error)
}

// Directories are identity stores looked up in order: the first that knows
// a name answers for it. A store that cannot answer stops the lookup with
// its error rather than letting a later store answer for a name it might
// hold.
type Directories []Directory

// Name returns the first directory's name, or "" when there is none.
func (ds Directories) Name() string {
	if len(ds) == 0 {
		return ""
	}
	return ds[0].Name()
}

// Lookup finds idOrLogin in the first directory that knows it.
func (ds Directories) Lookup(ctx context.Context, idOrLogin string) (User, bool, error) {
	for _, d := range ds {
		u, ok, err := d.Lookup(ctx, idOrLogin)
		if err != nil || ok {
			return u, ok, err
		}
	}
	return User{}, false, nil
}

// CheckPassword checks the password against the first directory that knows
// login; an unknown login in every directory is a failed check.
func (ds Directories) CheckPassword(ctx context.Context, login, password string) (User, bool, error) {
	for i, d := range ds {
		if i == len(ds)-1 {
			return d.CheckPassword(ctx, login, password)
		}
		_, ok, err := d.Lookup(ctx, login)
		if err != nil {
			return User{}, false, err
		}
		if ok {
			return d.CheckPassword(ctx, login, password)
		}
	}
	return User{}, false, nil
}

// Directory returns the users file as a Directory named name (the
// idStoreName of its users' sessions). A nil *Users gives a nil Directory.
func (us *Users) Directory(name string) Directory {
	if us == nil {
		return nil
	}
	return usersDirectory{us: us, name: name}
}

type usersDirectory struct {
	us   *Users
	name string
}

func (d usersDirectory) Name() string { return d.name }

func (d usersDirectory) Lookup(_ context.Context, idOrLogin string) (User, bool, error) {
	if u, ok := d.us.ByID(idOrLogin); ok {
		return u, true, nil
	}
	if ValidateUserName(idOrLogin) != nil {
		return User{}, false, nil
	}
	k := foldName(idOrLogin)
	if k == "" {
		return User{}, false, nil
	}
	u, ok := d.us.byFolded(k)
	return u, ok, nil
}

func (d usersDirectory) CheckPassword(_ context.Context, login, password string) (User, bool, error) {
	u, ok := d.us.CheckPassword(login, password)
	return u, ok, nil
}

// UsersFileOf returns the users file behind d (d itself, or the first of
// Directories that is one), or nil: what writes to the file (TOTP
// enrolment, the CLI) needs the file itself.
func UsersFileOf(d Directory) *Users {
	switch d := d.(type) {
	case usersDirectory:
		return d.us
	case Directories:
		for _, x := range d {
			if us := UsersFileOf(x); us != nil {
				return us
			}
		}
	}
	return nil
}

// DirectoryKey returns the canonical key of the user named raw (see UserKey)
// against any directory d (may be nil): the directory's id of the user when
// d knows raw, else raw's normalised form. It fails with ErrBadUserID for a
// name that cannot be a user's, and with the directory's error (wrapping
// ErrUnavailable) when d cannot answer.
func DirectoryKey(ctx context.Context, d Directory, raw string) (string, error) {
	if err := ValidateUserName(raw); err != nil {
		return "", err
	}
	if d != nil {
		u, ok, err := d.Lookup(ctx, raw)
		if err != nil {
			if !errors.Is(err, ErrUnavailable) {
				err = fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			return "", err
		}
		if ok {
			return u.ID, nil
		}
	}
	k := foldName(raw)
	if k == "" {
		return "", ErrBadUserID
	}
	return k, nil
}
