// Package extdisco implements XEP-0215 External Service Discovery: the
// host tells its users which STUN and TURN servers to use for audio and
// video calls (XEP-0167 with ICE), and hands out short-lived TURN
// credentials derived from a secret it shares with the TURN server, so no
// long-lived TURN password ever reaches a client.
package extdisco

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"time"

	"parley/internal/config"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// NS is the XEP-0215 namespace, also its disco feature.
const NS = "urn:xmpp:extdisco:2"

// ExtDisco is the module of one host.
type ExtDisco struct {
	h *module.Host
	// now is the clock credentials are computed from (tests fix it).
	now func() time.Time
}

var _ module.Module = (*ExtDisco)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) { return &ExtDisco{h: h, now: time.Now}, nil }

// Name implements module.Module.
func (*ExtDisco) Name() string { return "extdisco" }

// Start registers the queries on the host, which announces the feature,
// only when the host has services to announce: a feature with nothing
// behind it would send clients to ask for nothing.
func (e *ExtDisco) Start(context.Context) error {
	if e.h.HostCfg == nil || len(e.h.HostCfg.ExternalServices) == 0 {
		return nil
	}
	e.h.RegisterIQ("get", module.TargetHost, NS, e.get)
	return nil
}

// Stop implements module.Module.
func (*ExtDisco) Stop(context.Context) error { return nil }

// get answers <services/> (§3.1, optionally filtered by type, §3.2) and
// <credentials/> (§3.3). Only the host's own accounts may ask: the TURN
// credentials are for its users' calls, not for anyone who can reach the
// server over federation.
func (e *ExtDisco) get(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	if ev.From.Local() == "" || ev.From.Domain() != e.h.Domain {
		return stanza.ErrorReply(ev.Stanza, stanza.Forbidden, "only this host's users may discover its services")
	}
	switch q.Local {
	case "services":
		return e.services(ev, q)
	case "credentials":
		return e.credentials(ev, q)
	}
	return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "expected <services/> or <credentials/>")
}

func (e *ExtDisco) services(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	want := q.Attr("type")
	out := xml.New(NS, "services")
	if want != "" {
		out.SetAttr("type", want)
	}
	for _, s := range e.h.HostCfg.ExternalServices {
		if want != "" && s.Type != want {
			continue
		}
		// A restricted service's credentials are only given on request
		// (§3.3); the others carry them right away, which saves clients a
		// round trip before a call.
		out.Append(e.service(s, ev.From, !s.Restricted))
	}
	return stanza.IQResult(ev.Stanza, out)
}

// credentials answers for the services the request names by host (and
// type and port when given); one that names none of them is
// item-not-found (§3.3).
func (e *ExtDisco) credentials(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	req := q.Child(NS, "service")
	if req == nil || req.Attr("host") == "" {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "name a service by host")
	}
	out := xml.New(NS, "credentials")
	for _, s := range e.h.HostCfg.ExternalServices {
		if s.Host != req.Attr("host") ||
			(req.Attr("type") != "" && req.Attr("type") != s.Type) ||
			(req.Attr("port") != "" && req.Attr("port") != strconv.Itoa(s.Port)) {
			continue
		}
		out.Append(e.service(s, ev.From, true))
	}
	if len(out.Elements()) == 0 {
		return stanza.ErrorReply(ev.Stanza, stanza.ItemNotFound, "")
	}
	return stanza.IQResult(ev.Stanza, out)
}

// service renders one configured service for user, with credentials when
// withCreds and the service has a secret.
func (e *ExtDisco) service(s config.ExternalService, user jid.JID, withCreds bool) *xml.Element {
	el := xml.New(NS, "service").SetAttr("type", s.Type).SetAttr("host", s.Host)
	if s.Port != 0 {
		el.SetAttr("port", strconv.Itoa(s.Port))
	}
	if s.Transport != "" {
		el.SetAttr("transport", s.Transport)
	}
	if s.Name != "" {
		el.SetAttr("name", s.Name)
	}
	if s.Restricted {
		el.SetAttr("restricted", "1")
	}
	if withCreds && s.Secret != "" {
		expires := e.now().Add(s.TTL.Duration).UTC().Truncate(time.Second)
		username, password := Credentials(s.Secret, user, expires)
		el.SetAttr("username", username).SetAttr("password", password).
			SetAttr("expires", expires.Format(time.RFC3339))
	}
	return el
}

// Credentials derives the TURN REST API credentials (the scheme coturn's
// use-auth-secret implements): the username is the expiry as a Unix time,
// a colon and the user's bare JID, and the password is the base64
// HMAC-SHA1 of the username keyed with the shared secret. The TURN server
// recomputes the password from the username and refuses it after expiry.
func Credentials(secret string, user jid.JID, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + user.Bare().String()
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(m.Sum(nil))
}
