package stream

import (
	"io"
	"net"
	"strings"
	"testing"

	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

func TestEndWithoutWriter(t *testing.T) {
	for _, tc := range []struct {
		name string
		cond stanza.StreamCondition
		want []string
	}{
		{"plain close", "", []string{xml.StreamClose}},
		{"stream error", stanza.StreamPolicyViolation, []string{"<stream:error>", "<policy-violation", "too fast", xml.StreamClose}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			go End(nil, a, tc.cond, "too fast", false)
			got, err := io.ReadAll(b) // until End closes a
			if err != nil {
				t.Fatal(err)
			}
			s := string(got)
			for _, w := range tc.want {
				if !strings.Contains(s, w) {
					t.Fatalf("wrote %q, want it to contain %q", s, w)
				}
			}
			if !strings.HasSuffix(s, xml.StreamClose) {
				t.Fatalf("wrote %q, want the closing tag last", s)
			}
		})
	}
}

func TestDrainsOnEnd(t *testing.T) {
	for cond, want := range map[stanza.StreamCondition]bool{
		"": true, stanza.StreamSystemShutdown: true, stanza.StreamPolicyViolation: false, stanza.StreamConflict: false,
	} {
		if got := DrainsOnEnd(cond); got != want {
			t.Errorf("DrainsOnEnd(%q) = %v, want %v", cond, got, want)
		}
	}
}
