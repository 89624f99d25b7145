package admin

import (
	"context"
	"errors"
	"testing"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
)

// mayAdminister fails the other way from IsAdmin: when the admin groups
// cannot be read, the target counts as an administrator, so an operation
// on it (or registering its name) is refused rather than let through.
func TestMayAdministerFailsTowardsAdmin(t *testing.T) {
	var fail bool
	h := &module.Host{Domain: "example.org", AdminCheck: func(context.Context, jid.JID) (bool, error) {
		if fail {
			return false, errors.New("directory down")
		}
		return false, nil
	}}
	ctx := context.Background()
	j := jid.MustParse("someone@example.org")
	if mayAdminister(ctx, h, j) {
		t.Fatal("an ordinary account counted as administrator")
	}
	fail = true
	h.ForgetAdmins()
	if !mayAdminister(ctx, h, j) {
		t.Fatal("a failed group lookup let the target count as no administrator")
	}
	if h.IsAdmin(ctx, j) {
		t.Fatal("IsAdmin itself must still fail closed")
	}
	if mayAdminister(ctx, h, jid.MustParse("someone@elsewhere.org")) {
		t.Fatal("admin groups answered for another domain's account")
	}
}
