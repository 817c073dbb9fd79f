package redistest

import "testing"

func TestServerStopRestart(t *testing.T) {
	s := Start(t)
	if out, err := s.CLI("set", "k", "v"); err != nil || out != "OK" {
		t.Fatalf("SET: %q, %v", out, err)
	}
	s.Stop()
	if s.ping() {
		t.Fatal("the server answers after Stop")
	}
	s.Stop() // a second Stop does nothing
	s.Restart()
	if out, err := s.CLI("exists", "k"); err != nil || out != "0" {
		t.Fatalf("after Restart, EXISTS k = %q, %v; want 0 (nothing persisted)", out, err)
	}
	s.Freeze()
	if s.ping() {
		t.Fatal("a frozen server answers")
	}
	s.Thaw()
	if !s.ping() {
		t.Fatal("a thawed server does not answer")
	}
}
