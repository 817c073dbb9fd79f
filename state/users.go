package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Factor keys a user may have enabled, spelled as the challenge API does.
const (
	FactorEmail = "ChallengeEmail"
	FactorSMS   = "ChallengeSMS"
	FactorYOTP  = "ChallengeYOTP"
	FactorFIDO2 = "ChallengeFIDO2"
)

// Factors lists every known factor key in a stable order.
var Factors = []string{FactorEmail, FactorSMS, FactorTOTP, FactorYOTP, FactorFIDO2}

// User is one entry of the users file.
type User struct {
	ID    string `json:"id"`
	Login string `json:"login"`
	// Name is the user's display name (a directory's cn, displayName...):
	// what the portal greets them with and the gate's
	// {http.auth.user.name}. Empty: the login stands for it.
	Name  string `json:"name,omitempty"`
	Group string `json:"group,omitempty"`
	Mail  string `json:"mail,omitempty"`
	Phone string `json:"phone,omitempty"`
	// PasswordHash is a bcrypt hash; empty means no password login.
	PasswordHash string `json:"password_hash,omitempty"`
	// TOTPSecret is the base32 secret of the user's authenticator app.
	TOTPSecret string `json:"totp_secret,omitempty"`
	// Factors are the enabled factor keys (see Factors).
	Factors []string `json:"factors,omitempty"`
	// Store is the name of the identity store the user was found in (a
	// session's idStoreName); set by directories, never in the file.
	Store string `json:"-"`
}

// HasFactor reports whether f is among the user's enabled factors.
func (u *User) HasFactor(f string) bool { return slices.Contains(u.Factors, f) }

func (u User) clone() User {
	u.Factors = slices.Clone(u.Factors)
	return u
}

// usersFile is the file's JSON shape.
type usersFile struct {
	Users []User `json:"users"`
}

// Users is the users file held in memory. It is safe for concurrent use;
// lookups return copies. Mutations change memory only until Save.
type Users struct {
	path string
	// Cost is the bcrypt cost of new password hashes. Default:
	// bcrypt.DefaultCost.
	Cost int

	mu      sync.RWMutex
	list    []User
	byID    map[string]int
	byLogin map[string]int
	// byFold holds the folded ids (see foldName), for UserKey.
	byFold map[string]int
}

// ErrUserNotFound is returned by mutations naming an unknown user.
var ErrUserNotFound = errors.New("user not found")

// LoadUsers reads the users file at path. With create set, a missing file
// reads as an empty one (for the CLI's first `user add`).
func LoadUsers(path string, create bool) (*Users, error) {
	us := &Users{path: path, Cost: bcrypt.DefaultCost}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		us.index()
		return us, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading users file: %w", err)
	}
	return parseUsers(path, b)
}

// parseUsers decodes and checks the contents b of the users file at path.
func parseUsers(path string, b []byte) (*Users, error) {
	us := &Users{path: path, Cost: bcrypt.DefaultCost}
	var f usersFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	us.list = f.Users
	if err := us.check(); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	us.index()
	return us, nil
}

// Path returns the file the users were loaded from.
func (us *Users) Path() string { return us.path }

// loginKey is how logins are compared: normalised as UserKey does.
func loginKey(login string) string { return foldName(login) }

// check validates every entry: ids and logins present and unique (logins
// case-insensitively), factors known, TOTP secrets and password hashes
// well-formed.
func (us *Users) check() error {
	ids := map[string]bool{}
	logins := map[string]bool{}
	for i, u := range us.list {
		if err := validUser(&u); err != nil {
			return fmt.Errorf("user %d (%q): %w", i, u.Login, err)
		}
		if ids[u.ID] {
			return fmt.Errorf("user %d: duplicate id %q", i, u.ID)
		}
		if logins[loginKey(u.Login)] {
			return fmt.Errorf("user %d: duplicate login %q", i, u.Login)
		}
		ids[u.ID], logins[loginKey(u.Login)] = true, true
	}
	return nil
}

func validUser(u *User) error {
	if strings.TrimSpace(u.ID) == "" {
		return errors.New("missing id")
	}
	if strings.TrimSpace(u.Login) == "" {
		return errors.New("missing login")
	}
	if ValidateUserName(u.ID) != nil || ValidateUserName(u.Login) != nil {
		return errors.New("id and login must be UTF-8 text without control characters")
	}
	for _, f := range u.Factors {
		if !slices.Contains(Factors, f) {
			return fmt.Errorf("unknown factor %q: allowed values are %s", f, strings.Join(Factors, ", "))
		}
	}
	if u.TOTPSecret != "" {
		if _, err := DecodeTOTPSecret(u.TOTPSecret); err != nil {
			return err
		}
	}
	if u.PasswordHash != "" {
		if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			return errors.New("password_hash is not a bcrypt hash")
		}
	}
	if u.HasFactor(FactorTOTP) && u.TOTPSecret == "" {
		return fmt.Errorf("factor %s needs a totp_secret", FactorTOTP)
	}
	return nil
}

func (us *Users) index() {
	us.byID = make(map[string]int, len(us.list))
	us.byLogin = make(map[string]int, len(us.list))
	us.byFold = make(map[string]int, len(us.list))
	for i, u := range us.list {
		us.byID[u.ID] = i
		us.byLogin[loginKey(u.Login)] = i
		us.byFold[foldName(u.ID)] = i
	}
}

// byFolded returns a copy of the user whose login, else whose id, folds to
// k (see foldName).
func (us *Users) byFolded(k string) (User, bool) {
	us.mu.RLock()
	defer us.mu.RUnlock()
	i, ok := us.byLogin[k]
	if !ok {
		i, ok = us.byFold[k]
	}
	if !ok {
		return User{}, false
	}
	return us.list[i].clone(), true
}

// ByID returns a copy of the user with id.
func (us *Users) ByID(id string) (User, bool) {
	us.mu.RLock()
	defer us.mu.RUnlock()
	i, ok := us.byID[id]
	if !ok {
		return User{}, false
	}
	return us.list[i].clone(), true
}

// ByLogin returns a copy of the user with login, compared without regard
// to letter case.
func (us *Users) ByLogin(login string) (User, bool) {
	us.mu.RLock()
	defer us.mu.RUnlock()
	i, ok := us.byLogin[loginKey(login)]
	if !ok {
		return User{}, false
	}
	return us.list[i].clone(), true
}

// Lookup finds a user by id, then by login.
func (us *Users) Lookup(idOrLogin string) (User, bool) {
	if u, ok := us.ByID(idOrLogin); ok {
		return u, true
	}
	return us.ByLogin(idOrLogin)
}

// All returns copies of every user, sorted by login.
func (us *Users) All() []User {
	us.mu.RLock()
	defer us.mu.RUnlock()
	out := make([]User, len(us.list))
	for i, u := range us.list {
		out[i] = u.clone()
	}
	sort.Slice(out, func(i, j int) bool { return loginKey(out[i].Login) < loginKey(out[j].Login) })
	return out
}

// Len returns the number of users.
func (us *Users) Len() int {
	us.mu.RLock()
	defer us.mu.RUnlock()
	return len(us.list)
}

// Add adds u, hashing password with bcrypt if it is not empty.
func (us *Users) Add(u User, password string) error {
	if err := validUser(&u); err != nil {
		return fmt.Errorf("adding user: %w", err)
	}
	if password != "" {
		h, err := us.hash(password)
		if err != nil {
			return err
		}
		u.PasswordHash = h
	}
	us.mu.Lock()
	defer us.mu.Unlock()
	if _, ok := us.byID[u.ID]; ok {
		return fmt.Errorf("adding user: id %q already exists", u.ID)
	}
	if _, ok := us.byLogin[loginKey(u.Login)]; ok {
		return fmt.Errorf("adding user: login %q already exists", u.Login)
	}
	us.list = append(us.list, u.clone())
	us.index()
	return nil
}

// SetPassword replaces the password of the user with that id or login.
func (us *Users) SetPassword(idOrLogin, password string) error {
	if password == "" {
		return errors.New("setting password: the password is empty")
	}
	h, err := us.hash(password)
	if err != nil {
		return err
	}
	return us.mutate(idOrLogin, func(u *User) error {
		u.PasswordHash = h
		return nil
	})
}

// SetTOTP sets the TOTP secret of the user with that id or login and
// enables the TOTP factor; an empty secret removes both.
func (us *Users) SetTOTP(idOrLogin, secret string) error {
	if secret != "" {
		s, err := NormalizeTOTPSecret(secret)
		if err != nil {
			return fmt.Errorf("setting totp secret: %w", err)
		}
		secret = s
	}
	return us.mutate(idOrLogin, func(u *User) error {
		u.TOTPSecret = secret
		u.Factors = slices.DeleteFunc(u.Factors, func(f string) bool { return f == FactorTOTP })
		if secret != "" {
			u.Factors = append(u.Factors, FactorTOTP)
		}
		return nil
	})
}

func (us *Users) mutate(idOrLogin string, fn func(*User) error) error {
	us.mu.Lock()
	defer us.mu.Unlock()
	i, ok := us.byID[idOrLogin]
	if !ok {
		i, ok = us.byLogin[loginKey(idOrLogin)]
	}
	if !ok {
		return fmt.Errorf("%w: %q", ErrUserNotFound, idOrLogin)
	}
	u := us.list[i].clone()
	if err := fn(&u); err != nil {
		return err
	}
	if err := validUser(&u); err != nil {
		return err
	}
	us.list[i] = u
	return nil
}

func (us *Users) hash(password string) (string, error) {
	cost := us.Cost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return string(h), nil
}

// Save writes the users to the file they were loaded from, atomically: a
// temporary file in the same directory, mode 0600, synced, then renamed over
// the old one.
func (us *Users) Save() error {
	us.mu.RLock()
	b, err := json.MarshalIndent(usersFile{Users: us.list}, "", "  ")
	us.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("encoding users file: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(us.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(us.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("saving users file: %w", err)
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("saving users file: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("saving users file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("saving users file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving users file: %w", err)
	}
	if err := os.Rename(name, us.path); err != nil {
		return fmt.Errorf("saving users file: %w", err)
	}
	return nil
}

var (
	dummyOnce sync.Once
	dummyHash []byte
)

// dummy returns a bcrypt hash of a random-ish password at the default cost,
// made once, so that a check for an unknown user costs what a real one does.
func dummy() []byte {
	dummyOnce.Do(func() {
		dummyHash, _ = bcrypt.GenerateFromPassword([]byte(NewIndex()), bcrypt.DefaultCost)
	})
	return dummyHash
}

// CheckPassword returns the user whose login (or id) and password match.
// Unknown users and users without a password run bcrypt against a dummy
// hash, so the answer takes about as long whether or not the user exists.
func (us *Users) CheckPassword(login, password string) (User, bool) {
	u, ok := us.ByLogin(login)
	if !ok {
		u, ok = us.ByID(login)
	}
	if !ok || u.PasswordHash == "" {
		_ = bcrypt.CompareHashAndPassword(dummy(), []byte(password))
		return User{}, false
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return User{}, false
	}
	return u, true
}
