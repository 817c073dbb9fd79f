package state

import (
	"reflect"
	"testing"
	"time"
)

// fillEvery sets every field of the value v points to, recursively, to a
// non-zero value that differs from field to field, so that a codec that
// forgets one field cannot round-trip it.
func fillEvery(t *testing.T, v reflect.Value, seed *int) {
	t.Helper()
	*seed++
	n := *seed
	switch v.Kind() {
	case reflect.String:
		v.SetString("v" + string(rune('a'+n%26)) + string(rune('A'+n/26%26)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(n))
	case reflect.Uint64:
		v.SetUint(uint64(n))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillEvery(t, s.Index(i), seed)
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			fillEvery(t, v.Index(i), seed)
		}
	case reflect.Uint8:
		v.SetUint(uint64(n % 256))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillEvery(t, k, seed)
		fillEvery(t, e, seed)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillEvery(t, p.Elem(), seed)
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(1_700_000_000+int64(n)*3600, int64(n)).UTC()))
			return
		}
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				t.Fatalf("%s.%s is unexported: teach this test about it", v.Type(), v.Type().Field(i).Name)
			}
			fillEvery(t, v.Field(i), seed)
		}
	default:
		t.Fatalf("no filler for %s: teach this test about it", v.Type())
	}
}

// TestSessionCodecCarriesEveryField: a Session with every field (and
// every field of its parts) set survives AppendSession/DecodeSession. A
// field added to Session but not to the codec fails here.
func TestSessionCodecCarriesEveryField(t *testing.T) {
	var s Session
	seed := 0
	fillEvery(t, reflect.ValueOf(&s).Elem(), &seed)
	enc := AppendSession(nil, &s)
	full, err := DecodeSession(enc)
	if err != nil {
		t.Fatal(err)
	}
	// The memory table's stored form, without the Key, carries the rest.
	stored, err := decodeStoredString(s.Key, storedForm(enc))
	if err != nil {
		t.Fatal(err)
	}
	want := reflect.ValueOf(s)
	for form, got := range map[string]*Session{"encoding": full, "stored form": stored} {
		for i := range want.NumField() {
			f := want.Type().Field(i)
			if !reflect.DeepEqual(reflect.ValueOf(*got).Field(i).Interface(), want.Field(i).Interface()) {
				t.Errorf("Session.%s does not survive the %s: got %v, want %v", f.Name, form,
					reflect.ValueOf(*got).Field(i).Interface(), want.Field(i).Interface())
			}
		}
	}
}

// storedForm returns the stored form of the encoding enc (AppendSession) in
// a string of its own, as the table's arenas hold it.
func storedForm(enc []byte) string { return string(appendStoredForm(nil, enc)) }
