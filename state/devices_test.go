package state

import (
	"fmt"
	"testing"
	"time"
)

func TestTrustDeviceBoundsAndExpiry(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	u := &UserState{UserID: "u"}
	for i := range MaxDevices + 5 {
		u.TrustDevice(fmt.Sprintf("d%d", i), t0.Add(time.Duration(i)*time.Second), t0.Add(time.Hour))
	}
	if len(u.Devices) != MaxDevices || u.Devices[0].ID != "d5" || u.Devices[MaxDevices-1].ID != fmt.Sprintf("d%d", MaxDevices+4) {
		t.Fatalf("kept %d devices, first %q", len(u.Devices), u.Devices[0].ID)
	}
	now := t0.Add(time.Minute)
	if !u.Trusts("d7", now) || u.Trusts("d0", now) || u.Trusts("d7x", now) {
		t.Fatal("Trusts: wrong answer for a kept, a dropped or an unknown device")
	}
	// Registering an id again replaces its entry; expired ones go.
	u.TrustDevice("d7", now, now.Add(2*time.Hour))
	later := t0.Add(90 * time.Minute)
	u.TrustDevice("new", later, later.Add(time.Hour))
	if len(u.Devices) != 2 || !u.Trusts("d7", later) || !u.Trusts("new", later) {
		t.Fatalf("after expiry: %+v", u.Devices)
	}
	if u.Trusts("d7", now.Add(2*time.Hour)) {
		t.Fatal("a device is trusted at its Until")
	}
}

func TestForgetDevicesByPrefix(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	u := &UserState{}
	for _, id := range []string{"portal:a", "fp:b", "portal:c"} {
		u.TrustDevice(id, t0, t0.Add(time.Hour))
	}
	if !u.ForgetDevices("portal:") || len(u.Devices) != 1 || u.Devices[0].ID != "fp:b" {
		t.Fatalf("after forgetting: %+v", u.Devices)
	}
	if u.ForgetDevices("portal:") {
		t.Fatal("forgetting nothing reported a change")
	}
}
