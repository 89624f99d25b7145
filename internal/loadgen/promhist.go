package loadgen

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ServerHist is one Prometheus histogram as a target's /metrics shows it:
// cumulative bucket counts by upper bound, sum and count. The generator
// reads the target's own view of what it measures (parley_login_seconds:
// a login from its slot to its bind, without the wait at accept) before
// and after a step; the difference is the step's.
type ServerHist struct {
	Count   float64
	Sum     float64
	Buckets []PromBucket // by increasing LE; the last is +Inf
}

// PromBucket is a cumulative bucket: observations <= LE.
type PromBucket struct {
	LE    float64
	Count float64
}

// ScrapeHist fetches url (a Prometheus text exposition) and returns the
// unlabelled histogram name. A histogram the target does not export is an
// error: the figure would silently read as zero.
func ScrapeHist(url, name string, timeout time.Duration) (ServerHist, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ServerHist{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ServerHist{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ServerHist{}, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return ParseHist(resp.Body, name)
}

// ParseHist reads histogram name from a Prometheus text exposition
// (Prometheus's own parser: the metrics library Parley exports with).
func ParseHist(r io.Reader, name string) (ServerHist, error) {
	var h ServerHist
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return h, err
	}
	mf := mfs[name]
	if mf == nil || len(mf.GetMetric()) == 0 || mf.GetMetric()[0].GetHistogram() == nil {
		return h, fmt.Errorf("no histogram %s", name)
	}
	ph := mf.GetMetric()[0].GetHistogram()
	h.Sum, h.Count = ph.GetSampleSum(), float64(ph.GetSampleCount())
	for _, b := range ph.GetBucket() {
		h.Buckets = append(h.Buckets, PromBucket{LE: b.GetUpperBound(), Count: float64(b.GetCumulativeCount())})
	}
	sort.Slice(h.Buckets, func(i, j int) bool { return h.Buckets[i].LE < h.Buckets[j].LE })
	return h, nil
}

// Sub returns h minus an earlier scrape of the same histogram.
func (h ServerHist) Sub(before ServerHist) ServerHist {
	d := ServerHist{Count: h.Count - before.Count, Sum: h.Sum - before.Sum}
	for i, b := range h.Buckets {
		if i < len(before.Buckets) && before.Buckets[i].LE == b.LE {
			b.Count -= before.Buckets[i].Count
		}
		d.Buckets = append(d.Buckets, b)
	}
	return d
}

// Mean is the mean observation in seconds (exact: sum over count).
func (h ServerHist) Mean() float64 {
	if h.Count <= 0 {
		return 0
	}
	return h.Sum / h.Count
}

// Quantile estimates quantile q in seconds from the buckets, interpolating
// linearly inside the bucket it falls in (as Prometheus's
// histogram_quantile does), so it is only as exact as the buckets are fine.
// In the +Inf bucket it returns the highest finite bound.
func (h ServerHist) Quantile(q float64) float64 {
	if h.Count <= 0 || len(h.Buckets) == 0 {
		return 0
	}
	rank := q * h.Count
	lower, below := 0.0, 0.0
	for _, b := range h.Buckets {
		if b.Count >= rank {
			if math.IsInf(b.LE, 1) {
				return lower
			}
			if b.Count == below {
				return b.LE
			}
			return lower + (b.LE-lower)*(rank-below)/(b.Count-below)
		}
		if !math.IsInf(b.LE, 1) {
			lower = b.LE
		}
		below = b.Count
	}
	return lower
}
