package version_test

import (
	"parley/internal/testserver"
	"testing"
)

// TestVersion covers XEP-0092 §2 with the OS hidden (default) and shown.
func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		wantOS    bool
	}{
		{"default hides os", "", false},
		{"show_os", "[modules.version]\nshow_os = true\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := start(t, tc.cfg, "alice")
			c := ts.Login(t, "alice", password, "r")
			r := c.IQ("get", "localhost", "<query xmlns='jabber:iq:version'/>")
			q := r.Child("jabber:iq:version", "query")
			if testserver.ErrorCondition(r) != "" || q == nil {
				t.Fatalf("reply %s", r)
			}
			if n := q.ChildText("jabber:iq:version", "name"); n != "Parley" {
				t.Errorf("name %q", n)
			}
			if v := q.ChildText("jabber:iq:version", "version"); v == "" {
				t.Errorf("empty version")
			}
			if hasOS := q.Child("jabber:iq:version", "os") != nil; hasOS != tc.wantOS {
				t.Errorf("os present = %v, want %v: %s", hasOS, tc.wantOS, q)
			}
		})
	}
}
