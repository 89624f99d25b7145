package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"parley/internal/directory"
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
// a new password apart. A directory account is fingerprinted by its entry's
// DN and the SCRAM secrets the entry holds (authPassword, which Parley
// writes with every password it sets there); a directory that keeps no
// such secrets lets the stamp follow only the entry's existence and
// enabled state, since a bind password cannot be read back.
func accountStamp(ctx context.Context, h *module.Host, user jid.JID) (string, error) {
	if d, ok := h.AccountSource.(*directory.Directory); ok {
		u, err := d.LookupUser(ctx, user.Local())
		if err == nil && u.Disabled {
			err = directory.ErrDisabled
		}
		var creds storage.Credentials
		if err == nil {
			creds, err = d.SCRAMCredentials(ctx, user.Local())
		}
		switch {
		case errors.Is(err, directory.ErrNoSuchUser), errors.Is(err, directory.ErrDisabled):
			return "", errAccountGone
		case err != nil:
			return "", err
		}
		return credentialStamp(u.DN, creds), nil
	}
	if h.AccountSource != nil {
		ok, err := h.AccountExists(ctx, user.Local())
		switch {
		case err != nil:
			return "", err
		case !ok:
			return "", errAccountGone
		}
		return "", nil
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
	return credentialStamp(strconv.FormatInt(a.CreatedAt.UnixNano(), 10), a.Creds), nil
}

// credentialStamp hashes an account's identity (its creation time, its
// entry's DN) with its credentials.
func credentialStamp(identity string, c storage.Credentials) string {
	sum := sha256.New()
	fmt.Fprintf(sum, "%q\x00%q\x00", identity, c.Plain)
	for _, name := range slices.Sorted(maps.Keys(c.Keys)) {
		k := c.Keys[name]
		fmt.Fprintf(sum, "%q\x00%x\x00%d\x00%x\x00%x\x00", name, k.Salt, k.Iterations, k.StoredKey, k.ServerKey)
	}
	return hex.EncodeToString(sum.Sum(nil))
}
