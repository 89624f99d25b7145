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
