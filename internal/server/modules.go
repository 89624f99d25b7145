package server

import "parley/internal/module"

// DefaultModules is the module set every host runs, in start order. It is an
// explicit list on purpose: what runs is visible in one place, and there is
// no init-time registration.
func DefaultModules() []module.Factory {
	return []module.Factory{}
}
