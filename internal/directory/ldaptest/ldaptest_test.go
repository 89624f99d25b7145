package ldaptest

import (
	"strings"
	"testing"
)

func TestStartAndSearch(t *testing.T) {
	s := Start(t, "")
	out := s.Search(t, PeopleBase, "(uid=alice)", "displayName")
	if !strings.Contains(out, "displayName: Alice Liddell") {
		t.Fatalf("search output:\n%s", out)
	}
	s.Modify(t, "dn: uid=bob,"+PeopleBase+"\nchangetype: modify\nreplace: mobile\nmobile: 42\n")
	if out := s.Search(t, PeopleBase, "(uid=bob)", "mobile"); !strings.Contains(out, "mobile: 42") {
		t.Fatalf("after modify:\n%s", out)
	}
	s.Stop()
	s.Stop()
}
