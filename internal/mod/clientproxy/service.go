package clientproxy

import (
	"context"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Service is one client_proxy domain.
type Service struct {
	h          *module.Host
	domain     jid.JID // the service's domain JID
	target     jid.JID // the implementing client's bare JID
	maxPending int
	timeout    time.Duration

	mu         sync.Mutex
	resources  map[string]bool // available resources of target
	pending    map[string]*request
	subscribed bool
	// refused is set when the target answered "unsubscribed" (it refused,
	// or the account did not exist yet); the request is made again when
	// the account is created or the target comes online.
	refused bool
	stopped bool
	offs    []func()
}

// request is a forwarded IQ waiting for its answer.
type request struct {
	requester jid.JID      // who asked
	to        string       // the 'to' the requester used (the reply's 'from')
	id        string       // the request's id (kept unchanged when forwarded)
	resource  jid.JID      // the target resource it went to
	orig      *xml.Element // for error replies
	timer     *time.Timer
}

var _ module.Component = (*Service)(nil)

func newService(h *module.Host, domain, target jid.JID, maxPending int, timeout time.Duration) *Service {
	return &Service{
		h: h, domain: domain, target: target, maxPending: maxPending, timeout: timeout,
		resources: make(map[string]bool),
		pending:   make(map[string]*request),
	}
}

// Domain returns the service's domain.
func (s *Service) Domain() jid.JID { return s.domain }

func (s *Service) start(ctx context.Context) {
	if s.target.Domain() == s.h.Domain {
		s.offs = append(s.offs,
			s.h.Sessions.On(module.EventSessionAvailable, 0, func(ev *module.SessionEvent) bool {
				if ev.Session.JID().Bare() == s.target {
					s.askAgain(ev.Ctx)
				}
				return false
			}),
			s.h.Accounts.On(module.EventAccountCreated, 0, func(ev *module.AccountEvent) bool {
				if ev.JID == s.target {
					s.askAgain(ev.Ctx)
				}
				return false
			}))
	}
	s.sendPresence(ctx, "subscribe")
	s.sendPresence(ctx, "probe")
}

// askAgain repeats the subscription request after a refusal.
func (s *Service) askAgain(ctx context.Context) {
	s.mu.Lock()
	again := s.refused && !s.stopped
	s.refused = false
	s.mu.Unlock()
	if again {
		s.sendPresence(ctx, "subscribe")
	}
}

func (s *Service) stop(ctx context.Context) {
	for _, off := range s.offs {
		off()
	}
	s.mu.Lock()
	s.stopped = true
	reqs := s.takeAll(func(*request) bool { return true })
	s.mu.Unlock()
	for _, r := range reqs {
		s.fail(ctx, r, stanza.ServiceUnavailable, "the service is shutting down")
	}
}

func (s *Service) sendPresence(ctx context.Context, typ string) {
	s.h.Router.Route(ctx, xml.New("", "presence").SetAttr("type", typ).
		SetAttr("from", s.domain.String()).SetAttr("to", s.target.String()))
}

// Resources returns the target's resources the service believes available.
func (s *Service) Resources() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.resources))
	for r := range s.resources {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Subscribed reports whether the target approved the subscription.
func (s *Service) Subscribed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subscribed
}

// Deliver implements module.Component.
func (s *Service) Deliver(ctx context.Context, el *xml.Element, from, to jid.JID) {
	switch el.Local {
	case stanza.KindPresence:
		s.presence(ctx, el, from, to)
	case stanza.KindIQ:
		switch el.Attr("type") {
		case stanza.TypeGet, stanza.TypeSet:
			s.forward(ctx, el, from, to)
		default:
			s.answer(ctx, el, from, to)
		}
	case stanza.KindMessage:
		// Seed 003: messages are not proxied. Say so rather than drop.
		if reply := stanza.ErrorReply(el, stanza.ServiceUnavailable, "this service answers IQ requests only"); reply != nil {
			s.h.Router.Route(ctx, reply)
		}
	}
}

// presence tracks the target's resources and the subscription.
func (s *Service) presence(ctx context.Context, el *xml.Element, from, to jid.JID) {
	if from.Bare() != s.target || to != s.domain {
		return // only the target's presence to the service itself matters
	}
	typ := el.Attr("type")
	var failed []*request
	s.mu.Lock()
	switch typ {
	case "":
		if from.Resource() != "" {
			s.resources[from.Resource()] = true
		}
		// Presence is only shared with subscribers (or after a probe,
		// which only subscribers get answered).
		s.subscribed = true
	case "unavailable":
		if from.Resource() == "" {
			s.resources = make(map[string]bool)
			failed = s.takeAll(func(*request) bool { return true })
		} else {
			delete(s.resources, from.Resource())
			failed = s.takeAll(func(r *request) bool { return r.resource == from })
		}
	case "subscribed":
		s.subscribed, s.refused = true, false
	case "unsubscribed", "error":
		s.refused = true
		// The target refused or withdrew the subscription: no resource
		// can be trusted to be there any more.
		s.subscribed = false
		s.resources = make(map[string]bool)
		failed = s.takeAll(func(*request) bool { return true })
	case "subscribe":
		// The target may want the service's presence; grant it, since it
		// is the implementing client.
		s.mu.Unlock()
		s.sendPresence(ctx, "subscribed")
		return
	case "probe":
		s.mu.Unlock()
		s.h.Router.Route(ctx, xml.New("", "presence").SetAttr("from", s.domain.String()).SetAttr("to", from.String()))
		return
	}
	s.mu.Unlock()
	for _, r := range failed {
		s.fail(ctx, r, stanza.ServiceUnavailable, "the implementing client went away")
	}
}

// forward sends a request to one random available resource of the target.
func (s *Service) forward(ctx context.Context, el *xml.Element, from, to jid.JID) {
	if to != s.domain {
		// JIDs under the domain (our translated addresses included) do
		// not take requests.
		s.reply(ctx, stanza.ErrorReply(el, stanza.ServiceUnavailable, ""))
		return
	}
	s.mu.Lock()
	if s.stopped || len(s.resources) == 0 {
		s.mu.Unlock()
		s.reply(ctx, stanza.ErrorReply(el, stanza.ServiceUnavailable, "no implementing client is available"))
		return
	}
	if len(s.pending) >= s.maxPending {
		s.mu.Unlock()
		s.reply(ctx, stanza.ErrorReply(el, stanza.ResourceConstraint, "too many requests in flight"))
		return
	}
	names := make([]string, 0, len(s.resources))
	for r := range s.resources {
		names = append(names, r)
	}
	res, _ := s.target.WithResource(names[rand.IntN(len(names))])
	token := newToken()
	r := &request{requester: from, to: el.Attr("to"), id: el.Attr("id"), resource: res, orig: el}
	s.pending[token] = r
	r.timer = time.AfterFunc(s.timeout, func() { s.expire(token) })
	s.mu.Unlock()
	out := el.WithAttr("from", translate(s.domain, from, token).String()).WithAttr("to", res.String())
	s.h.Router.Route(ctx, out)
}

// answer translates a reply of the implementing client back to the
// requester. Replies that do not answer a request we forwarded, to the
// resource we forwarded it to, are dropped.
func (s *Service) answer(ctx context.Context, el *xml.Element, from, to jid.JID) {
	token := to.Resource()
	s.mu.Lock()
	r := s.pending[token]
	if r == nil || r.resource != from || r.id != el.Attr("id") || to.Domain() != s.domain.Domain() {
		s.mu.Unlock()
		s.h.Log.Debug("clientproxy: dropping unsolicited reply", "from", from.String(), "to", to.String())
		return
	}
	delete(s.pending, token)
	r.timer.Stop()
	s.mu.Unlock()
	s.h.Router.Route(ctx, el.WithAttr("to", r.requester.String()).WithAttr("from", r.to))
}

// expire answers a request the implementing client did not answer in time.
func (s *Service) expire(token string) {
	s.mu.Lock()
	r := s.pending[token]
	delete(s.pending, token)
	s.mu.Unlock()
	if r != nil {
		s.fail(context.Background(), r, stanza.RemoteServerTimeout, "the implementing client did not answer in time")
	}
}

// takeAll removes the pending requests matching keep; s.mu is held.
func (s *Service) takeAll(match func(*request) bool) []*request {
	var out []*request
	for tok, r := range s.pending {
		if match(r) {
			r.timer.Stop()
			delete(s.pending, tok)
			out = append(out, r)
		}
	}
	return out
}

func (s *Service) fail(ctx context.Context, r *request, c stanza.Condition, text string) {
	s.reply(ctx, stanza.ErrorReply(r.orig, c, text))
}

func (s *Service) reply(ctx context.Context, el *xml.Element) {
	if el != nil {
		s.h.Router.Route(ctx, el)
	}
}

// Pending returns the number of forwarded requests awaiting an answer.
func (s *Service) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}
