package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
)

// errAccountGone: the account of a session no longer exists or is
// disabled.
var errAccountGone = errors.New("console: account deleted or disabled")

// accountStamp fingerprints what a console login rests on: the account
// exists, is enabled, and has the credentials it had. Sessions are keyed by
// the account's JID, so without it a session would outlive a deletion,
// a disable or a password reset made anywhere but in the console (the
// command line without the admin socket, XEP-0133, in-band registration,
// another cluster node), and would even carry over to a new account
// created later under the same name. The creation time and the stored
// keys (fresh salts on every password set) tell a re-created account and
// a new password apart. A directory account has no stored keys: there the
// stamp only says that the directory still has it enabled.
func accountStamp(ctx context.Context, h *module.Host, user jid.JID) (string, error) {
	if h.AccountSource != nil {
		ok, err := h.AccountExists(ctx, user.Local())
		switch {
		case err != nil:
			return "", err
		case !ok:
			return "", errAccountGone
		}
		return "directory", nil
	}
	a, err := h.Store.Accounts().Get(ctx, h.Domain, user.Local())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "", errAccountGone
	case err != nil:
		return "", err
	case a.Disabled:
		return "", errAccountGone
	}
	sum := sha256.New()
	fmt.Fprintf(sum, "%d\x00%q\x00", a.CreatedAt.UnixNano(), a.Creds.Plain)
	for _, name := range slices.Sorted(maps.Keys(a.Creds.Keys)) {
		k := a.Creds.Keys[name]
		fmt.Fprintf(sum, "%q\x00%x\x00%d\x00%x\x00%x\x00", name, k.Salt, k.Iterations, k.StoredKey, k.ServerKey)
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}
