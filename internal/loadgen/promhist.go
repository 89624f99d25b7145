package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
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

// ParseHist reads histogram name from a Prometheus text exposition.
func ParseHist(r io.Reader, name string) (ServerHist, error) {
	var h ServerHist
	seen := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"_") {
			continue
		}
		rest := line[len(name)+1:]
		sp := strings.LastIndexByte(rest, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(rest[sp+1:], 64)
		if err != nil {
			return h, fmt.Errorf("%s: bad value in %q", name, line)
		}
		key := rest[:sp]
		switch {
		case key == "sum":
			h.Sum, seen = v, true
		case key == "count":
			h.Count, seen = v, true
		case strings.HasPrefix(key, `bucket{le="`) && strings.HasSuffix(key, `"}`):
			le, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(key, `bucket{le="`), `"}`), 64)
			if err != nil {
				return h, fmt.Errorf("%s: bad bucket in %q", name, line)
			}
			h.Buckets = append(h.Buckets, PromBucket{LE: le, Count: v})
		}
	}
	if err := sc.Err(); err != nil {
		return h, err
	}
	if !seen || len(h.Buckets) == 0 {
		return h, fmt.Errorf("no histogram %s", name)
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
