package c2s

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"parley/internal/sasl"
	"parley/internal/storage"
	"parley/internal/xmpp/xml"
)

// XEP-0484 FAST on top of SASL2: a client that logged in asks for a token
// (<request-token/>), and later logs in with it in one round trip (an HT
// mechanism with <fast/>). Tokens belong to one client (its user-agent
// id) and one mechanism, live auth.fast.lifetime, and are kept only as
// hashes (storage.FASTTokens). A token used when less than half its
// lifetime is left is replaced by a new one in the <success/>; the old one
// stays valid until the new one is used (§3.5). A password change and the
// account's deletion remove all of them (storage), `parley user fast
// revoke` removes them by hand.

// fastOn reports whether FAST is offered on this stream: SASL2 is, FAST is
// configured, and the host keeps its accounts in storage (a directory
// host's accounts come and go in the directory, which FAST cannot see).
func (c *conn) fastOn() bool {
	return c.sasl2On() && *c.srv.cfg.Auth.FAST.Enabled && c.directory() == nil
}

// fastEnv gives the HT mechanism the stored tokens of the client that is
// logging in; a disabled account has none.
func (c *conn) fastEnv(req *sasl2Request) sasl.FASTEnv {
	host, store := c.host.Domain, c.srv.store
	return sasl.FASTEnv{Tokens: func(user string) ([]storage.FASTToken, error) {
		// Both lookups every time, so an unknown user costs what a
		// known one does.
		a, err := store.Accounts().Get(c.ctx, host, user)
		toks, terr := store.FAST().Client(c.ctx, host, user, req.uaID)
		switch {
		case err != nil:
			return nil, err
		case terr != nil:
			return nil, terr
		case a.Disabled:
			return nil, nil
		}
		return toks, nil
	}}
}

// useFASTToken records the login with ht's token, which makes it the
// client's current token and retires older ones; with invalidate it
// removes it instead (the client logs out, §3.6). It returns a SASL
// condition when the login must fail: the token was revoked meanwhile or
// the count was seen before (a replay), or storage failed.
func (c *conn) useFASTToken(user string, req *sasl2Request, ht *sasl.HTSession) string {
	tok := ht.Token()
	err := c.srv.store.FAST().Use(c.ctx, c.host.Domain, user, tok.ID, req.count, time.Now())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		c.srv.log.Info("c2s: FAST token revoked or replayed", "remote", c.t.RemoteAddr().String(), "user", user+"@"+c.host.Domain, "token_id", tok.ID)
		return sasl.CondNotAuthorized
	case err != nil:
		c.srv.log.Warn("c2s: recording a FAST login failed", "user", user+"@"+c.host.Domain, "err", err)
		return sasl.CondTemporaryAuthFailure
	}
	if req.invalidate {
		if _, err := c.srv.store.FAST().Revoke(c.ctx, c.host.Domain, user, tok.ID); err != nil {
			c.srv.log.Warn("c2s: invalidating a FAST token failed", "user", user+"@"+c.host.Domain, "err", err)
		}
	}
	return ""
}

// fastTokenFor issues a token when the client asked for one, or when it
// logged in with a token that is due for rotation (not when it is
// logging out with it). It returns the <token/> for the <success/>, nil
// for none; a storage failure only costs the client its new token.
func (c *conn) fastTokenFor(user string, req *sasl2Request, ht *sasl.HTSession) *xml.Element {
	mech := req.requestToken
	if mech == "" && ht != nil && !req.invalidate {
		lifetime := c.srv.cfg.Auth.FAST.Lifetime.Duration
		if time.Until(ht.Token().ExpiresAt) < lifetime/2 {
			mech = ht.Name()
		}
	}
	if mech == "" || !c.fastOn() || req.uaID == "" {
		return nil
	}
	cfg := c.srv.cfg.Auth.FAST
	token, hash := sasl.NewFASTToken()
	idb := make([]byte, 6)
	_, _ = rand.Read(idb)
	now := time.Now().UTC().Truncate(time.Microsecond) // what PostgreSQL keeps
	t := storage.FASTToken{
		ID: hex.EncodeToString(idb), ClientID: req.uaID,
		Software: cleanText(req.software, maxUserAgentText), Device: cleanText(req.device, maxUserAgentText),
		Mechanism: mech, Hash: hash, IssuedAt: now, ExpiresAt: now.Add(cfg.Lifetime.Duration),
	}
	if err := c.srv.store.FAST().Issue(c.ctx, c.host.Domain, user, t, cfg.MaxPerAccount); err != nil {
		c.srv.log.Warn("c2s: issuing a FAST token failed", "user", user+"@"+c.host.Domain, "err", err)
		return nil
	}
	c.srv.log.Info("c2s: FAST token issued", "user", user+"@"+c.host.Domain, "token_id", t.ID, "mechanism", mech, "client_id", req.uaID)
	return xml.New(nsFAST, "token").SetAttr("expiry", t.ExpiresAt.Format("2006-01-02T15:04:05Z")).SetAttr("token", token)
}
