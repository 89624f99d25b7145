package s2s

import (
	"context"
	"errors"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"parley/internal/sockio"
)

// Resolver is the part of DNS outgoing streams use. *net.Resolver satisfies
// it; tests inject a fake so they never touch real DNS.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// target is one address to try: an IP and port, and whether the stream
// starts with TLS (XEP-0368) or plaintext plus STARTTLS.
type target struct {
	addr   string
	direct bool
}

// happyEyeballsDelay is how long one attempt runs alone before the next
// target is tried in parallel (RFC 8305 §5 recommends 250 ms).
const happyEyeballsDelay = 250 * time.Millisecond

// targets lists where to connect for domain, in order of preference:
// the static route; else the SRV records of _xmpps-server._tcp (direct TLS)
// and _xmpp-server._tcp merged by priority and weight (XEP-0368 §3); else
// the domain's own addresses on 5269 (RFC 6120 §3.2.2). A "." target means
// the service is decidedly not available (RFC 2782).
func (s *Service) targets(ctx context.Context, domain string) ([]target, error) {
	if r, ok := s.cfg.S2S.Routes[domain]; ok {
		direct := strings.HasPrefix(r, "tls://")
		return []target{{addr: strings.TrimPrefix(r, "tls://"), direct: direct}}, nil
	}
	// DNS knows internationalised names by their A-labels (RFC 5891).
	if a, err := idna.Lookup.ToASCII(domain); err == nil {
		domain = a
	}
	type srv struct {
		*net.SRV
		direct bool
	}
	var recs []srv
	for _, svc := range []struct {
		name   string
		direct bool
	}{{"xmpps-server", true}, {"xmpp-server", false}} {
		_, rr, err := s.resolver.LookupSRV(ctx, svc.name, "tcp", domain)
		if err != nil {
			continue
		}
		for _, r := range rr {
			recs = append(recs, srv{r, svc.direct})
		}
	}
	if len(recs) == 1 && recs[0].Target == "." {
		return nil, errors.New("s2s: " + domain + " has no XMPP service (SRV target \".\")")
	}
	// Lower priority first; at equal priority higher weight first, and
	// direct TLS before STARTTLS (it saves a round trip).
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Priority != recs[j].Priority {
			return recs[i].Priority < recs[j].Priority
		}
		if recs[i].Weight != recs[j].Weight {
			return recs[i].Weight > recs[j].Weight
		}
		return recs[i].direct && !recs[j].direct
	})
	type hostPort struct {
		host   string
		port   int
		direct bool
	}
	var hps []hostPort
	for _, r := range recs {
		if r.Target == "." {
			continue
		}
		hps = append(hps, hostPort{strings.TrimSuffix(r.Target, "."), int(r.Port), r.direct})
	}
	if len(hps) == 0 {
		hps = []hostPort{{domain, 5269, false}}
	}
	var out []target
	for _, hp := range hps {
		ips, err := s.resolver.LookupHost(ctx, hp.host)
		if err != nil {
			continue
		}
		for _, ip := range ips {
			out = append(out, target{addr: net.JoinHostPort(ip, strconv.Itoa(hp.port)), direct: hp.direct})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("s2s: no address for " + domain)
	}
	return out, nil
}

// dialAny connects to the first target that answers, starting a new attempt
// every happyEyeballsDelay while earlier ones are still pending (happy
// eyeballs across all targets, RFC 8305). The losers are closed.
func (s *Service) dialAny(ctx context.Context, ts []target) (net.Conn, target, error) {
	type result struct {
		c   net.Conn
		t   target
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, len(ts))
	var d net.Dialer
	next, pending := 0, 0
	var lastErr error
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			if next < len(ts) {
				t := ts[next]
				next++
				pending++
				go func() {
					c, err := d.DialContext(ctx, "tcp", t.addr)
					results <- result{c, t, err}
				}()
				timer.Reset(happyEyeballsDelay)
			}
		case r := <-results:
			pending--
			if r.err == nil {
				cancel()
				// Close connections that still complete after the winner.
				go func(n int) {
					for ; n > 0; n-- {
						if x := <-results; x.c != nil {
							_ = x.c.Close()
						}
					}
				}(pending)
				return sockio.Wrap(r.c), r.t, nil
			}
			lastErr = r.err
			if next < len(ts) {
				timer.Reset(0) // a failure starts the next attempt at once
			} else if pending == 0 {
				return nil, target{}, lastErr
			}
		case <-ctx.Done():
			go func(n int) {
				for ; n > 0; n-- {
					if x := <-results; x.c != nil {
						_ = x.c.Close()
					}
				}
			}(pending)
			return nil, target{}, ctx.Err()
		}
	}
}
