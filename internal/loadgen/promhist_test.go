package loadgen

import (
	"math"
	"strings"
	"testing"
)

const expo = `# HELP parley_login_seconds Client login time.
# TYPE parley_login_seconds histogram
parley_login_seconds_bucket{le="0.01"} 10
parley_login_seconds_bucket{le="0.1"} 90
parley_login_seconds_bucket{le="1"} 100
parley_login_seconds_bucket{le="+Inf"} 100
parley_login_seconds_sum 4.5
parley_login_seconds_count 100
parley_login_slots_in_use 3
`

func TestParseHist(t *testing.T) {
	h, err := ParseHist(strings.NewReader(expo), "parley_login_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if h.Count != 100 || h.Sum != 4.5 || len(h.Buckets) != 4 || !math.IsInf(h.Buckets[3].LE, 1) {
		t.Fatalf("parsed %+v", h)
	}
	if m := h.Mean(); m != 0.045 {
		t.Fatalf("mean %v", m)
	}
	// rank 50 of 100: 40 of the 80 in (0.01, 0.1].
	if q := h.Quantile(.5); math.Abs(q-0.055) > 1e-9 {
		t.Fatalf("p50 %v", q)
	}
	// rank 99: 9 of the 10 in (0.1, 1].
	if q := h.Quantile(.99); math.Abs(q-0.91) > 1e-9 {
		t.Fatalf("p99 %v", q)
	}
	// A step's share: the difference of two scrapes.
	before, _ := ParseHist(strings.NewReader(strings.NewReplacer("} 90", "} 80", "} 100", "} 80", "_count 100", "_count 80", "_sum 4.5", "_sum 2.5").Replace(expo)), "parley_login_seconds")
	d := h.Sub(before)
	if d.Count != 20 || d.Sum != 2 || d.Buckets[1].Count != 10 || d.Buckets[2].Count != 20 {
		t.Fatalf("difference %+v", d)
	}
	if _, err := ParseHist(strings.NewReader(expo), "parley_nothing_seconds"); err == nil {
		t.Fatal("a missing histogram was not an error")
	}
}
