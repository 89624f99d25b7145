package upload_test

import (
	"strings"
	"testing"

	"parley/internal/testserver"
)

// [host.access.upload]: a user the rule refuses gets forbidden with a
// text (XEP-0363 §4.2's example), the others their slot.
func TestUploadAccessRule(t *testing.T) {
	e := setup(t, baseCfg+"[host.access.upload]\ndeny_users = [\"bob@localhost\"]\n")
	e.ts.AddUser(t, "bob", "password1")
	bob := e.ts.Login(t, "bob", "password1", "r")
	res := e.request(bob, "upload.localhost", "a.txt", 10, "text/plain")
	if testserver.ErrorCondition(res) != "forbidden" || !strings.Contains(res.String(), "not allowed to upload") {
		t.Fatalf("bob's slot request: %s", res)
	}
	e.slot(t, e.alice, "a.txt", 10, "text/plain")
}
