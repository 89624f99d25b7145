// Package metrics holds Parley's Prometheus collectors. Each server owns its
// own registry (no global default registry), so two servers in one test
// process never share counters.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the set of collectors of one server.
type Metrics struct {
	Registry *prometheus.Registry

	Sessions       *prometheus.GaugeVec   // bound client sessions, by host
	Connections    *prometheus.GaugeVec   // open connections, by kind (c2s, s2s-in, s2s-out, component)
	StanzasIn      *prometheus.CounterVec // by kind (message, presence, iq)
	StanzasOut     *prometheus.CounterVec // by kind
	AuthFailures   *prometheus.CounterVec // by mechanism
	AuthSuccesses  *prometheus.CounterVec // by mechanism
	QueueDrops     prometheus.Counter     // sessions closed because their output queue overflowed
	StreamErrors   *prometheus.CounterVec // by condition
	StorageLatency *prometheus.HistogramVec
	// AuthThrottle counts brute-force limiter actions by action: "delayed"
	// (an attempt waited), "refused" (an attempt from a paused address),
	// "paused" (an address was paused).
	AuthThrottle *prometheus.CounterVec
	// AuthTrackedSources is how many source addresses the limiter tracks.
	AuthTrackedSources prometheus.Gauge
	// DirectoryUp is 1 while the LDAP directory answers, 0 when no server
	// could be reached (internal/directory).
	DirectoryUp prometheus.Gauge
	// DirectoryErrors counts directory failures by kind: "connect" (one
	// server refused or timed out; failover follows), "request" (a
	// connection broke mid-request; retried), "unavailable" (every server
	// failed: the operation failed).
	DirectoryErrors *prometheus.CounterVec
	// DirectoryRefreshes counts the poller's reads of the whole directory
	// by reason: "start" (every node, once), "poll" (the node elected to
	// poll, every poll_interval), "notice" (another node's poll found a
	// change and said so), "check" (a node not elected reads on its own:
	// every tenth interval, or again after a read it needed failed).
	DirectoryRefreshes *prometheus.CounterVec
	// LoginSlots is how many slots of limits.max_concurrent_logins are
	// taken; LoginSlotExpiries counts slots given up after
	// limits.login_slot_timeout by connections not logged in by then.
	LoginSlots        prometheus.Gauge
	LoginSlotExpiries prometheus.Counter
	// LoginSeconds is how long client logins took on the server: from the
	// moment the connection got its login slot (its accept, without a
	// gate) to its bound or resumed session. Time spent waiting in the
	// listen backlog or at the gate is not in it, so under a login storm
	// it shows what the admitted logins cost, next to the clients' own
	// latency, which includes the wait.
	LoginSeconds prometheus.Histogram
	// ParkedReaders is how many client sessions have parked their reader
	// goroutine (idle for limits.park_idle_after) and wait for their next
	// bytes in a few small frames.
	ParkedReaders prometheus.Gauge
	// AbuseReports counts the XEP-0377 reports users attach to a block
	// (internal/mod/blocking), by host and reason: "spam", "abuse" or
	// "other" (a reason this server does not know; the log has it).
	AbuseReports *prometheus.CounterVec

	// stanzasIn and stanzasOut are StanzasIn's and StanzasOut's counters
	// for the three stanza kinds, looked up once (CountStanzaIn).
	stanzasIn, stanzasOut kindCounters
}

// kindCounters holds a by-kind CounterVec's counters for the three stanza
// kinds. Looking a label value up in the vector hashes it under a lock,
// and at tens of thousands of stanzas a second each way that was 2 % of a
// busy core.
type kindCounters struct {
	vec                   *prometheus.CounterVec
	message, presence, iq prometheus.Counter
}

func newKindCounters(vec *prometheus.CounterVec) kindCounters {
	return kindCounters{vec: vec, message: vec.WithLabelValues("message"),
		presence: vec.WithLabelValues("presence"), iq: vec.WithLabelValues("iq")}
}

func (k *kindCounters) inc(kind string) {
	var c prometheus.Counter
	switch kind {
	case "message":
		c = k.message
	case "presence":
		c = k.presence
	case "iq":
		c = k.iq
	}
	if c == nil {
		c = k.vec.WithLabelValues(kind)
	}
	c.Inc()
}

// CountStanzaIn counts a stanza received, by kind (its element name):
// StanzasIn.WithLabelValues(kind).Inc() without the lookup.
func (m *Metrics) CountStanzaIn(kind string) {
	m.stanzasIn.inc(kind)
}

// CountStanzaOut counts a stanza written, by kind.
func (m *Metrics) CountStanzaOut(kind string) {
	m.stanzasOut.inc(kind)
}

// New creates and registers the collectors, plus Go runtime and process
// collectors, in a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parley_sessions", Help: "Bound client sessions.",
		}, []string{"host"}),
		Connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parley_connections", Help: "Open connections by kind.",
		}, []string{"kind"}),
		StanzasIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_stanzas_in_total", Help: "Stanzas received from sessions, by kind.",
		}, []string{"kind"}),
		StanzasOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_stanzas_out_total", Help: "Stanzas written to sessions, by kind.",
		}, []string{"kind"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_auth_failures_total", Help: "Failed authentication attempts, by mechanism.",
		}, []string{"mechanism"}),
		AuthSuccesses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_auth_successes_total", Help: "Successful authentications, by mechanism.",
		}, []string{"mechanism"}),
		QueueDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_queue_overflows_total", Help: "Sessions closed because they did not read their output.",
		}),
		StreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_stream_errors_total", Help: "Stream errors sent, by condition.",
		}, []string{"condition"}),
		StorageLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "parley_storage_seconds", Help: "Storage operation latency.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"op"}),
	}
	m.AuthThrottle = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_auth_throttle_total", Help: "Brute-force limiter actions on login attempts, by action (delayed, refused, paused).",
	}, []string{"action"})
	m.AuthTrackedSources = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "parley_auth_tracked_sources", Help: "Source addresses with recent failed logins tracked by the brute-force limiter.",
	})
	r.MustRegister(m.AuthThrottle, m.AuthTrackedSources)
	m.DirectoryUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "parley_directory_up", Help: "1 while the LDAP directory is reachable, 0 when every server failed.",
	})
	m.DirectoryErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_directory_errors_total", Help: "LDAP directory failures by kind (connect, request, unavailable).",
	}, []string{"kind"})
	m.DirectoryRefreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_directory_refreshes_total", Help: "Reads of the whole LDAP directory by the poller, by reason (start, poll, notice, check).",
	}, []string{"reason"})
	m.LoginSlots = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "parley_login_slots_in_use", Help: "Client connections negotiating (TLS, authentication, bind) now, of limits.max_concurrent_logins.",
	})
	m.LoginSlotExpiries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "parley_login_slot_expiries_total", Help: "Connections that went on without a login slot after limits.login_slot_timeout: not logged in by then, or still waiting for their address's share.",
	})
	m.LoginSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "parley_login_seconds", Help: "Client login time on the server, from the login slot (or accept) to the bound session.",
		// 1 ms to about 25 s in steps of 1.5x, so that a p99 read from
		// the buckets is within 50 % even at the tail.
		Buckets: prometheus.ExponentialBuckets(0.001, 1.5, 26),
	})
	m.ParkedReaders = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "parley_parked_readers", Help: "Idle client sessions whose reader goroutine has parked (limits.park_idle_after) until their next bytes.",
	})
	m.AbuseReports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_abuse_reports_total", Help: "Spam and abuse reports users attached to a block (XEP-0377), by host and reason (spam, abuse, other).",
	}, []string{"host", "reason"})
	r.MustRegister(m.LoginSlots, m.LoginSlotExpiries, m.LoginSeconds, m.ParkedReaders, m.AbuseReports)
	m.stanzasIn, m.stanzasOut = newKindCounters(m.StanzasIn), newKindCounters(m.StanzasOut)
	r.MustRegister(m.Sessions, m.Connections, m.StanzasIn, m.StanzasOut, m.AuthFailures,
		m.AuthSuccesses, m.QueueDrops, m.StreamErrors, m.StorageLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// EnableDirectory registers the directory collectors. They exist only on
// servers with a [directory]: a parley_directory_up of 0 on a server without
// one would read as an outage.
func (m *Metrics) EnableDirectory() {
	m.Registry.MustRegister(m.DirectoryUp, m.DirectoryErrors, m.DirectoryRefreshes)
	for _, r := range []string{"start", "poll", "notice", "check"} {
		m.DirectoryRefreshes.WithLabelValues(r).Add(0)
	}
}

// Init creates the label combinations every server has at zero, so that
// dashboards and alerts see parley_sessions{host="..."} 0 after a restart
// instead of a missing series.
func (m *Metrics) Init(hosts []string) {
	for _, h := range hosts {
		m.Sessions.WithLabelValues(h).Set(0)
		for _, r := range []string{"spam", "abuse", "other"} {
			m.AbuseReports.WithLabelValues(h, r).Add(0)
		}
	}
	for _, k := range []string{"c2s", "s2s-in", "s2s-out", "component"} {
		m.Connections.WithLabelValues(k).Add(0)
	}
	for _, k := range []string{"message", "presence", "iq"} {
		m.StanzasIn.WithLabelValues(k).Add(0)
		m.StanzasOut.WithLabelValues(k).Add(0)
	}
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512",
		"SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512-PLUS", "EXTERNAL"} {
		m.AuthFailures.WithLabelValues(mech).Add(0)
		m.AuthSuccesses.WithLabelValues(mech).Add(0)
	}
}

// ObserveStorage records how long a storage operation took.
func (m *Metrics) ObserveStorage(op string, start time.Time) {
	m.StorageLatency.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
