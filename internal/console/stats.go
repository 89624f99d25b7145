package console

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"parley/internal/module"
)

// The dashboard samples the metrics registry every sampleEvery and keeps
// the last historyLen samples (ten minutes), so a page opened now shows a
// chart at once and every viewer reads the same numbers.
const (
	sampleEvery = 5 * time.Second
	historyLen  = 120
)

// sample is one point of the dashboard, computed from the registry: the
// same counters and gauges /metrics exposes.
type sample struct {
	At time.Time `json:"t"`
	// Sessions by host (parley_sessions).
	Sessions map[string]float64 `json:"sessions"`
	// Rates per second since the previous sample.
	LoginsPerSec  float64 `json:"logins"`  // parley_auth_successes_total
	StanzasPerSec float64 `json:"stanzas"` // parley_stanzas_in_total + _out_total
	// S2S streams (parley_connections kind s2s-in and s2s-out).
	S2S float64 `json:"s2s"`
	// StorageMs is the mean storage call latency since the previous
	// sample (parley_storage_seconds), in milliseconds.
	StorageMs float64 `json:"storage_ms"`
	// DirectoryUp is parley_directory_up, -1 without a directory.
	DirectoryUp float64 `json:"directory_up"`
}

type totals struct {
	logins, stanzas, storSum, storCount float64
}

type sampler struct {
	g     prometheus.Gatherer
	hosts []string
	now   func() time.Time

	mu      sync.Mutex
	last    totals
	lastAt  time.Time
	history []sample
}

func newSampler(g prometheus.Gatherer, hosts []*module.Host, now func() time.Time) *sampler {
	s := &sampler{g: g, now: now}
	for _, h := range hosts {
		s.hosts = append(s.hosts, h.Domain)
	}
	return s
}

func (s *sampler) run(stop <-chan struct{}) {
	s.take()
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.take()
		}
	}
}

func sum(m *dto.MetricFamily, keep func(*dto.Metric) bool) float64 {
	var v float64
	for _, x := range m.GetMetric() {
		if keep != nil && !keep(x) {
			continue
		}
		switch {
		case x.Counter != nil:
			v += x.GetCounter().GetValue()
		case x.Gauge != nil:
			v += x.GetGauge().GetValue()
		}
	}
	return v
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// take gathers one sample.
func (s *sampler) take() {
	if s.g == nil {
		return
	}
	fams, err := s.g.Gather()
	if err != nil {
		return
	}
	now := s.now()
	smp := sample{At: now, Sessions: map[string]float64{}, DirectoryUp: -1}
	for _, h := range s.hosts {
		smp.Sessions[h] = 0
	}
	var cur totals
	for _, f := range fams {
		switch f.GetName() {
		case "parley_sessions":
			for _, m := range f.GetMetric() {
				smp.Sessions[label(m, "host")] += m.GetGauge().GetValue()
			}
		case "parley_auth_successes_total":
			cur.logins = sum(f, nil)
		case "parley_stanzas_in_total", "parley_stanzas_out_total":
			cur.stanzas += sum(f, nil)
		case "parley_connections":
			smp.S2S = sum(f, func(m *dto.Metric) bool { k := label(m, "kind"); return k == "s2s-in" || k == "s2s-out" })
		case "parley_storage_seconds":
			for _, m := range f.GetMetric() {
				cur.storSum += m.GetHistogram().GetSampleSum()
				cur.storCount += float64(m.GetHistogram().GetSampleCount())
			}
		case "parley_directory_up":
			smp.DirectoryUp = sum(f, nil)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lastAt.IsZero() {
		if dt := now.Sub(s.lastAt).Seconds(); dt > 0 {
			smp.LoginsPerSec = max(0, cur.logins-s.last.logins) / dt
			smp.StanzasPerSec = max(0, cur.stanzas-s.last.stanzas) / dt
		}
		if n := cur.storCount - s.last.storCount; n > 0 {
			smp.StorageMs = (cur.storSum - s.last.storSum) / n * 1000
		}
	}
	s.last, s.lastAt = cur, now
	s.history = append(s.history, smp)
	if len(s.history) > historyLen {
		s.history = append(s.history[:0], s.history[len(s.history)-historyLen:]...)
	}
}

// view is the history as one viewer may see it: sessions only of the
// hosts they administer, and the server-wide series only for server
// administrators.
func (s *sampler) view(hosts map[string]bool, server bool) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	type point struct {
		T           int64    `json:"t"`
		Sessions    float64  `json:"sessions"`
		Logins      *float64 `json:"logins,omitempty"`
		Stanzas     *float64 `json:"stanzas,omitempty"`
		S2S         *float64 `json:"s2s,omitempty"`
		StorageMs   *float64 `json:"storage_ms,omitempty"`
		DirectoryUp *float64 `json:"directory_up,omitempty"`
	}
	out := make([]point, 0, len(s.history))
	for _, x := range s.history {
		p := point{T: x.At.UnixMilli()}
		for h, v := range x.Sessions {
			if hosts[h] {
				p.Sessions += v
			}
		}
		if server {
			x := x
			p.Logins, p.Stanzas, p.S2S, p.StorageMs = &x.LoginsPerSec, &x.StanzasPerSec, &x.S2S, &x.StorageMs
			if x.DirectoryUp >= 0 {
				p.DirectoryUp = &x.DirectoryUp
			}
		}
		out = append(out, p)
	}
	b, _ := json.Marshal(out)
	return b
}

// latest returns the newest sample.
func (s *sampler) latest() (sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.history) == 0 {
		return sample{}, false
	}
	return s.history[len(s.history)-1], true
}
