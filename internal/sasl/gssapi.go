package sasl

import (
	"errors"
	"unicode/utf8"

	"parley/internal/gssapi"
)

// RFC 4752 §3.3 security layer bits. Parley offers only "none": the
// stream is under TLS, and a SASL layer under XMPP would wrap every
// stanza a second time.
const (
	gssLayerNone = 0x01
)

// gssapiSession is one GSSAPI exchange (RFC 4752 §3.1):
//
//	C: initial context token (AP-REQ)
//	S: AP-REP, when the client asked for mutual authentication
//	C: empty response
//	S: Wrap{layers offered = none, max size 0}
//	C: Wrap{layer chosen, max size, authzid}
//	S: success
type gssapiSession struct {
	env        Env
	state      int // 0: want token, 1: want empty after AP-REP, 2: want wrap, 3: done or failed
	challenged bool
	ctx        *gssapi.Context
	username   string
	authzid    string
}

func (g *gssapiSession) Name() string     { return GSSAPI }
func (g *gssapiSession) Username() string { return g.username }
func (g *gssapiSession) Authzid() string  { return g.authzid }

func (g *gssapiSession) Next(msg []byte) ([]byte, bool, error) {
	out, done, err := g.step(msg)
	if err != nil {
		g.state = 3
	}
	return out, done, err
}

func (g *gssapiSession) step(msg []byte) ([]byte, bool, error) {
	switch g.state {
	case 0:
		if msg == nil && !g.challenged {
			g.challenged = true
			return []byte{}, false, nil
		}
		if len(msg) == 0 {
			return nil, false, negotiationFailure(CondMalformedRequest, "GSSAPI needs the client's context token")
		}
		ctx, rep, err := g.env.GSSAPI.Accept(msg, g.env.RemoteIP)
		if err != nil {
			g.env.logInfo("sasl: GSSAPI context refused", "reason", err.Error())
			switch {
			case errors.Is(err, gssapi.ErrDefective):
				return nil, false, negotiationFailure(CondMalformedRequest, "")
			case errors.Is(err, gssapi.ErrUnavailable):
				return nil, false, fail(CondTemporaryAuthFailure, "")
			}
			return nil, false, fail(CondNotAuthorized, "")
		}
		user, err := g.env.MapPrincipal(g.env.ctx(), ctx.Principal)
		if err != nil {
			g.env.logInfo("sasl: Kerberos principal has no account here", "principal", ctx.Principal.String(), "reason", err.Error())
			var f *Failure
			if errors.As(err, &f) {
				return nil, false, f
			}
			return nil, false, fail(CondNotAuthorized, "")
		}
		g.ctx, g.username = ctx, user
		if rep != nil {
			g.state = 1
			return rep, false, nil
		}
		return g.offerLayers()
	case 1:
		if len(msg) != 0 {
			return nil, false, fail(CondMalformedRequest, "expected an empty response after the AP-REP")
		}
		return g.offerLayers()
	case 2:
		p, err := g.ctx.Unwrap(msg)
		if err != nil {
			g.env.logInfo("sasl: GSSAPI security layer message refused", "principal", g.ctx.Principal.String(), "reason", err.Error())
			return nil, false, fail(CondNotAuthorized, "")
		}
		if len(p) < 4 {
			return nil, false, fail(CondMalformedRequest, "security layer message shorter than 4 octets")
		}
		if p[0] != gssLayerNone {
			return nil, false, fail(CondMalformedRequest, "only the security layer \"none\" is offered")
		}
		az := p[4:]
		if len(az) > maxAuthzid || !utf8.Valid(az) {
			return nil, false, fail(CondInvalidAuthzid, "")
		}
		g.authzid = g.normalizeAuthzid(string(az))
		g.state = 3
		return nil, true, nil
	}
	return nil, false, fail(CondMalformedRequest, "exchange already finished")
}

// offerLayers sends the server's security-layer message: "no security
// layer" only, with a maximum message size of 0 (RFC 4752 §3.1: there is
// no layer whose messages could have a size).
func (g *gssapiSession) offerLayers() ([]byte, bool, error) {
	tok, err := g.ctx.Wrap([]byte{gssLayerNone, 0, 0, 0})
	if err != nil {
		return nil, false, fail(CondTemporaryAuthFailure, "")
	}
	g.state = 2
	return tok, false, nil
}

// normalizeAuthzid drops an authzid that only repeats who the client
// already is: clients built on the C GSSAPI SASL plugins send the
// username or the principal where RFC 6120 §6.4.6 expects a bare JID
// (or nothing). Anything else is left for the caller to check as a JID.
func (g *gssapiSession) normalizeAuthzid(az string) string {
	if az == g.username || az == g.ctx.Principal.String() {
		return ""
	}
	return az
}

func negotiationFailure(cond, text string) *Failure {
	f := fail(cond, text)
	f.Negotiation = true
	return f
}
