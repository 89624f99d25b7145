package module

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
