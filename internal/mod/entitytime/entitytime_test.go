package entitytime_test

import (
	"testing"
	"time"
)

// TestTime covers XEP-0202 §3: <tzo/> and a UTC <utc/> close to now.
func TestTime(t *testing.T) {
	ts := start(t, "", "alice")
	c := ts.Login(t, "alice", password, "r")
	before := time.Now().Add(-time.Second)
	r := iq(t, c, "get", "localhost", "<time xmlns='urn:xmpp:time'/>")
	if condition(r) != "" {
		t.Fatalf("error: %s", r)
	}
	tm := r.Child("urn:xmpp:time", "time")
	if tm == nil {
		t.Fatalf("no <time/>: %s", r)
	}
	if tzo := tm.ChildText("urn:xmpp:time", "tzo"); tzo != "+00:00" {
		t.Errorf("tzo %q", tzo)
	}
	utc := tm.ChildText("urn:xmpp:time", "utc")
	got, err := time.Parse(time.RFC3339Nano, utc)
	if err != nil || utc[len(utc)-1] != 'Z' {
		t.Fatalf("utc %q is not XEP-0082 UTC: %v", utc, err)
	}
	if got.Before(before) || got.After(time.Now().Add(time.Second)) {
		t.Errorf("utc %s is not now", got)
	}
	if r := iq(t, c, "set", "localhost", "<time xmlns='urn:xmpp:time'/>"); condition(r) != "service-unavailable" {
		t.Errorf("set: %s", r)
	}
}
