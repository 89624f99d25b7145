package config

import (
	"fmt"
	"time"
)

// Push configures XEP-0357 push notifications for one host ([host.push]).
type Push struct {
	// Summary is how much of a message a notification tells the app
	// server, which passes it on to a third-party push service (Apple,
	// Google): "minimal" (default: only how many messages are waiting),
	// "sender" (also who sent the last one) or "full" (also its body).
	// The default keeps message content and contacts away from parties
	// the user has no contract with.
	Summary string `toml:"summary"`
	// MaxRegistrations bounds the push registrations one account may keep
	// (default 10: one per device is typical), so an account cannot make
	// the server fan out each message to any number of app servers.
	MaxRegistrations int `toml:"max_registrations"`
	// Timeout is how long a notification waits for the app server's
	// answer before it is forgotten (default 30s).
	Timeout Duration `toml:"timeout"`
	// MaxPending bounds the notifications awaiting an answer on the host
	// (default 1000): beyond it new ones are dropped, so a stalled app
	// server cannot make the server hold unbounded memory.
	MaxPending int `toml:"max_pending"`
}

func (p *Push) applyDefaults() {
	if p.Summary == "" {
		p.Summary = "minimal"
	}
	setInt(&p.MaxRegistrations, 10)
	setDur(&p.Timeout, 30*time.Second)
	setInt(&p.MaxPending, 1000)
}

func (p Push) validate(i int) []string {
	var out []string
	bad := func(format string, args ...any) {
		out = append(out, fmt.Sprintf("host[%d].push.", i)+fmt.Sprintf(format, args...))
	}
	switch p.Summary {
	case "minimal", "sender", "full":
	default:
		bad("summary: %q is not minimal, sender or full", p.Summary)
	}
	if p.MaxRegistrations < 1 || p.MaxRegistrations > 1000 {
		bad("max_registrations: %d is not between 1 and 1000", p.MaxRegistrations)
	}
	if p.Timeout.Duration < time.Second {
		bad("timeout: %v is shorter than 1s", p.Timeout.Duration)
	}
	if p.MaxPending < 1 {
		bad("max_pending: %d is not positive", p.MaxPending)
	}
	return out
}

// ExternalService is one STUN or TURN service announced to the host's
// users through XEP-0215 External Service Discovery
// ([[host.external_service]]).
type ExternalService struct {
	// Type is "stun", "stuns", "turn" or "turns".
	Type string `toml:"type"`
	// Host is the service's host name or address, as clients dial it.
	Host string `toml:"host"`
	// Port is the service's port (0: the protocol's default, not sent).
	Port int `toml:"port"`
	// Transport is "udp", "tcp" or "" (not announced).
	Transport string `toml:"transport"`
	// Name is a human-readable name (optional).
	Name string `toml:"name"`
	// Restricted marks a service that needs credentials which clients ask
	// for with a <credentials/> request; the <services/> answer then
	// carries none.
	Restricted bool `toml:"restricted"`
	// Secret is the TURN server's shared secret (the "TURN REST API"
	// scheme, coturn's static-auth-secret): the server hands out
	// time-limited credentials derived from it. Only for turn and turns.
	Secret string `toml:"secret"`
	// TTL is how long derived credentials stay valid (default 24h).
	TTL Duration `toml:"ttl"`
}

func (s *ExternalService) applyDefaults() {
	setDur(&s.TTL, 24*time.Hour)
}

func (s ExternalService) validate(i, j int) []string {
	var out []string
	bad := func(format string, args ...any) {
		out = append(out, fmt.Sprintf("host[%d].external_service[%d].", i, j)+fmt.Sprintf(format, args...))
	}
	switch s.Type {
	case "stun", "stuns", "turn", "turns":
	default:
		bad("type: %q is not stun, stuns, turn or turns", s.Type)
	}
	if s.Host == "" {
		bad("host: empty")
	}
	if s.Port < 0 || s.Port > 65535 {
		bad("port: %d is not between 0 and 65535", s.Port)
	}
	switch s.Transport {
	case "", "udp", "tcp":
	default:
		bad("transport: %q is not udp or tcp", s.Transport)
	}
	if s.Secret != "" && s.Type != "turn" && s.Type != "turns" {
		bad("secret: only TURN services take a shared secret")
	}
	if s.TTL.Duration < time.Minute {
		bad("ttl: %v is shorter than 1m", s.TTL.Duration)
	}
	return out
}
