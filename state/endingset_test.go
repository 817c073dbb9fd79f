package state

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestEndingSet: what is added comes back, the newest for a key, and the
// strings handed out stay as they were while the slab grows under them.
func TestEndingSet(t *testing.T) {
	at := time.Date(2026, 12, 2, 6, 0, 0, 123, time.FixedZone("X", 3600))
	s := NewEndingSet(0)
	want := map[Key]Ending{}
	add := func(i int, user, login string) {
		e := Ending{Key: KeyOf(fmt.Sprint("id-", i)), UserID: user, LoginName: login, Deadline: at.Add(time.Duration(i) * time.Second)}
		s.Add(e)
		want[e.Key] = e
	}
	add(0, "", "")
	add(1, "u1", "")
	add(2, "", "login2")
	add(3, "user-3", "login-3")
	add(3, "user-3b", "l3") // replaces
	var first []Ending
	for e := range s.All() {
		first = append(first, e)
	}
	for i := 4; i < 5000; i++ { // grow the slab many times over
		add(i, fmt.Sprint("user-", i), fmt.Sprint("login-", i))
	}
	if s.Len() != len(want) {
		t.Fatalf("Len %d, want %d", s.Len(), len(want))
	}
	check := func(e Ending) {
		t.Helper()
		w, ok := want[e.Key]
		if !ok || e.UserID != w.UserID || e.LoginName != w.LoginName || !e.Deadline.Equal(w.Deadline) || e.Deadline.Location() != time.UTC {
			t.Fatalf("got %+v, want %+v (deadline in UTC)", e, w)
		}
	}
	for _, e := range first {
		check(e)
	}
	n := 0
	for e := range s.All() {
		check(e)
		n++
	}
	if n != len(want) {
		t.Fatalf("All yielded %d, want %d", n, len(want))
	}
	if !s.Has(KeyOf("id-3")) || s.Has(KeyOf("id-5000")) {
		t.Fatal("Has is wrong")
	}
	for range s.All() {
		break // stops when asked
	}
}

// TestEndingSetHoldsNoPointers: the point of the set is that the collector
// does not walk it; a pointer in its map's keys or values would undo that.
func TestEndingSetHoldsNoPointers(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[Key](), reflect.TypeFor[endingRef]()} {
		if hasPointers(typ) {
			t.Errorf("%v holds pointers", typ)
		}
	}
	if !hasPointers(reflect.TypeFor[Ending]()) {
		t.Error("hasPointers misses the strings and the Location of an Ending")
	}
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for f := range t.Fields() {
			if hasPointers(f.Type) {
				return true
			}
		}
		return false
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Invalid, reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer,
		reflect.Slice, reflect.String, reflect.UnsafePointer:
		return true
	}
	return true
}

// TestEndingSetGone: Gone reports the sessions due by end that the next
// set does not hold, with their users and logins, and no others.
func TestEndingSetGone(t *testing.T) {
	end := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	prev, next := NewEndingSet(0), NewEndingSet(0)
	var want []string
	for i := range 3000 {
		e := Ending{Key: KeyOf(fmt.Sprint("id-", i)), UserID: fmt.Sprint("u", i), LoginName: fmt.Sprint("l", i)}
		switch i % 4 {
		case 0: // due and gone: expired
			e.Deadline = end.Add(-time.Duration(i) * time.Millisecond)
			want = append(want, e.UserID+"/"+e.LoginName)
		case 1: // due at end exactly and gone: expired
			e.Deadline = end
			want = append(want, e.UserID+"/"+e.LoginName)
		case 2: // due but still there (touched since): not expired
			e.Deadline = end.Add(-time.Second)
			next.Add(Ending{Key: e.Key, UserID: e.UserID, LoginName: e.LoginName, Deadline: end.Add(time.Hour)})
		case 3: // gone before its deadline (deleted): not an expiry
			e.Deadline = end.Add(time.Nanosecond)
		}
		prev.Add(e)
	}
	var got []string
	prev.Gone(next, end, func(e Ending) { got = append(got, e.UserID+"/"+e.LoginName) })
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Gone reported %d sessions, want %d (first: %v, want %v)", len(got), len(want), got[:min(3, len(got))], want[:3])
	}
}
