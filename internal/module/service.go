package module

import "parley/internal/metrics"

// ServiceKey names a value one module provides to others on the same host
// (the roster module's Store, used by presence). The type parameter makes
// lookups type-safe; keys are immutable values, so a package may declare one
// as a variable without holding mutable state.
type ServiceKey[T any] struct{ name string }

// NewServiceKey returns a key; name appears only in diagnostics.
func NewServiceKey[T any](name string) ServiceKey[T] { return ServiceKey[T]{name: name} }

// Provide publishes v under k on h, replacing an earlier value.
func Provide[T any](h *Host, k ServiceKey[T], v T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.services == nil {
		h.services = make(map[any]any)
	}
	h.services[k] = v
}

// Lookup returns the value published under k on h. Modules look services
// up in Start: providers publish in New, so every provider has published by
// then whatever the module order.
func Lookup[T any](h *Host, k ServiceKey[T]) (T, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	v, ok := h.services[k].(T)
	return v, ok
}

// Election tells whether this node runs a cluster-wide job now (the
// archive retention purge): one node of a cluster at a time holds each
// job's lease. A server without [cluster] provides none, and jobs run.
type Election interface {
	Leading(job string) bool
}

// ElectionKey is where the server provides the Election of a clustered
// node, on every host.
var ElectionKey = NewServiceKey[Election]("election")

// Leading reports whether h's node should run job: true without a cluster.
func Leading(h *Host, job string) bool {
	e, ok := Lookup(h, ElectionKey)
	return !ok || e.Leading(job)
}

// Notices carries small "look again" messages from one node of a cluster
// to all the others (cluster.Node's Notify and OnNotice): a module that
// keeps in memory what any node may change in storage (a blocklist
// changed by the account's session on another node) tells the others to
// drop their copy. A notice is not delivered to the node that sent it,
// has no reply and may be lost (a node cut off from NATS misses it), so it
// never carries state, only the news that state changed. A server without
// [cluster] provides none.
type Notices interface {
	Notify(topic string, payload []byte) error
	OnNotice(topic string, fn func(payload []byte)) (cancel func())
}

// NoticesKey is where the server provides a clustered node's Notices, on
// every host.
var NoticesKey = NewServiceKey[Notices]("notices")

// MetricsKey is where the server provides its metrics on every host, for
// the modules that count what they do (the blocking module's XEP-0377
// reports). Absent on a bare host built by a test: a module then counts
// nothing.
var MetricsKey = NewServiceKey[*metrics.Metrics]("metrics")
