package entitytime_test

import (
	"parley/internal/testserver"
	"testing"
	"time"
)

// TestTime covers XEP-0202 §3: <tzo/> and a UTC <utc/> close to now.
func TestTime(t *testing.T) {
	ts := start(t, "", "alice")
	c := ts.Login(t, "alice", password, "r")
	before := time.Now().Add(-time.Second)
	r := c.IQ("get", "localhost", "<time xmlns='urn:xmpp:time'/>")
	if testserver.ErrorCondition(r) != "" {
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
	if r := c.IQ("set", "localhost", "<time xmlns='urn:xmpp:time'/>"); testserver.ErrorCondition(r) != "service-unavailable" {
		t.Errorf("set: %s", r)
	}
}
