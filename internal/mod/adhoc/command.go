package adhoc

import (
	"context"
	"sort"
	"sync"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Command statuses (XEP-0050 §4.4).
const (
	StatusExecuting = "executing"
	StatusCompleted = "completed"
	StatusCanceled  = "canceled"
)

// Command is one ad-hoc command of the host.
type Command struct {
	// Node identifies the command (XEP-0050 §2.2); Name is shown to users.
	Node, Name string
	// Allowed decides who may see and run the command; nil lets anyone.
	// It is asked for discovery and again before every stage.
	Allowed func(ctx context.Context, from jid.JID) bool
	// Run performs one stage. The module owns sessions: Run sees the
	// state the previous stage returned and never a session id.
	Run func(req *Request) Response
}

func (c Command) allowed(ctx context.Context, from jid.JID) bool {
	return c.Allowed == nil || c.Allowed(ctx, from)
}

// Request is one stage of a command as its Run sees it.
type Request struct {
	Ctx  context.Context
	From jid.JID // full JID of the requester
	// Action is "execute" (the first stage, or a client that executes
	// again), "next" or "complete"; cancel is handled by the module.
	Action string
	// Form is the submitted data form, nil when the stage carried none.
	Form *Form
	// State is what the previous stage returned (nil on the first).
	State any
}

// Response is what a stage returns.
type Response struct {
	// Status is StatusExecuting (more stages follow: the module keeps the
	// session) or StatusCompleted.
	Status string
	// Form is a form to fill (executing) or a result form (completed).
	Form *xml.Element
	// Note is shown to the user (XEP-0050 §4.3); NoteType is "info" when
	// empty, "warn" or "error".
	Note, NoteType string
	// State is handed to the next stage.
	State any
	// Err, when set, is answered as a stanza error and ends the session.
	Err *stanza.Error
}

// registry holds the commands of one host.
type registry struct {
	mu   sync.RWMutex
	cmds map[string]Command
}

func newRegistry() *registry { return &registry{cmds: make(map[string]Command)} }

func (r *registry) add(c Command) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds[c.Node] = c
}

func (r *registry) get(node string) (Command, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.cmds[node]
	return c, ok
}

// list returns the commands sorted by node, so discovery is stable.
func (r *registry) list() []Command {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Command, 0, len(r.cmds))
	for _, c := range r.cmds {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}
