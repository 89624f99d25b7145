package s2s

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"
)

// ConnInfo describes one domain pair on a live stream (parley s2s list).
type ConnInfo struct {
	Direction   string    `json:"direction"` // in or out
	Local       string    `json:"local"`
	Remote      string    `json:"remote"`
	Addr        string    `json:"addr"`
	TLS         string    `json:"tls"`
	Certificate string    `json:"certificate"` // verdict
	Method      string    `json:"method"`      // sasl-external, dialback-tls, dialback, or "" while authenticating
	State       string    `json:"state"`       // authenticated, authenticating, negotiating, verifying (out: a stream for db:verify only)
	Since       time.Time `json:"since"`
}

// List returns every pair on every live stream.
func (s *Service) List() []ConnInfo {
	ins := s.accept.Conns()
	s.mu.Lock()
	outs := s.outStreamsLocked()
	s.mu.Unlock()
	var out []ConnInfo
	for _, o := range outs {
		o.mu.Lock()
		base := ConnInfo{Direction: "out", Remote: o.remote, Addr: o.addr, TLS: tlsVersion(o.tls), Certificate: o.verdict, Since: o.started}
		switch {
		case o.w == nil:
			base.State, base.Local = "negotiating", o.first
			out = append(out, base)
		case o.forVerify:
			// No pair of ours: it carries db:verify requests only.
			base.State, base.Local = "verifying", o.first
			out = append(out, base)
		}
		for local, p := range o.pairs {
			if o.w == nil {
				break
			}
			ci := base
			ci.Local, ci.Method, ci.Since = local, p.method, p.since
			ci.State = "authenticating"
			if p.state == pairValid {
				ci.State = "authenticated"
			}
			out = append(out, ci)
		}
		o.mu.Unlock()
	}
	for _, c := range ins {
		c.mu.Lock()
		base := ConnInfo{Direction: "in", Local: c.local, Remote: c.peer, Addr: c.remoteAddr(), TLS: tlsVersion(c.tls), Since: c.started}
		if len(c.verified) == 0 {
			base.State = "negotiating"
			base.Certificate = c.verdicts[c.peer]
			out = append(out, base)
		}
		for k, m := range c.verified {
			ci := base
			ci.Local, ci.Remote, ci.Method, ci.State = k.local, k.remote, m, "authenticated"
			ci.Certificate = c.verdicts[k.remote]
			if ci.Certificate == "" {
				ci.Certificate = VerdictNone
			}
			out = append(out, ci)
		}
		c.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Remote != b.Remote {
			return a.Remote < b.Remote
		}
		if a.Direction != b.Direction {
			return a.Direction < b.Direction
		}
		return a.Local < b.Local
	})
	return out
}

// AdminHandler serves GET /s2s as JSON. It is mounted on the admin unix
// socket only (never on a TCP listener), so reaching it takes local access
// with the server user's file permissions.
func (s *Service) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		list := s.List()
		if list == nil {
			list = []ConnInfo{}
		}
		_ = json.NewEncoder(w).Encode(list)
	})
}
