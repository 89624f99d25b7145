package module

import "net/http"

// HTTP is the server's public HTTPS listener as modules see it
// (internal/httpfront implements it). The server provides it on every host
// under HTTPService, so a module serves HTTP without opening a port of its
// own: one listener, one certificate selection by SNI, one set of timeouts
// and per-address connection limits for every HTTP service.
type HTTP interface {
	// Mount serves h for requests whose path matches pattern, in
	// net/http.ServeMux syntax without a host ("/upload/example.com/"
	// for a subtree, "GET /x" for one method). Mount from New or Start:
	// the listener is bound after every module has started, and only if
	// something is mounted. A pattern that is already mounted, or that
	// conflicts with one, is an error.
	//
	// Requests reach h with dot segments refused, r.RemoteAddr set to the
	// client's address (taken from X-Forwarded-For only when the
	// connection comes from a trusted proxy) and the listener's read and
	// write timeouts in force; a handler that streams a large body extends
	// them with http.ResponseController while data keeps moving.
	Mount(pattern string, h http.Handler) error
	// BaseURL is the public base URL of domain's HTTP services: scheme,
	// host, port and path prefix without a trailing slash
	// ("https://example.com:5443"). URLs given to clients are BaseURL plus
	// the mounted path. Call it once the server has started: the default
	// names the bound port.
	BaseURL(domain string) string
}

// HTTPService is the key under which the server provides HTTP on every
// host; a host without it (tests that build hosts by hand) has no HTTPS
// listener.
var HTTPService = NewServiceKey[HTTP]("http")
