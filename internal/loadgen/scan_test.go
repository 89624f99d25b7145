package loadgen

import (
	"testing"
	"time"
)

func TestScan(t *testing.T) {
	el := []byte(`<message xml:lang='en' from="bench2@x/r" type='chat' to='bench1@x'><body>s3.12345.2.xx</body></message>`)
	if got := string(Name(el)); got != "message" {
		t.Errorf("Name = %q", got)
	}
	if got := string(Attr(el, "from")); got != "bench2@x/r" {
		t.Errorf("from = %q", got)
	}
	if got := string(Attr(el, "type")); got != "chat" {
		t.Errorf("type = %q", got)
	}
	if got := Attr(el, "id"); got != nil {
		t.Errorf("id = %q", got)
	}
	if got := string(Attr(el, "lang")); got != "" {
		t.Errorf("lang must not match xml:lang, got %q", got)
	}
	st, ok := ParseStamp(ChildText(el, "body"))
	if !ok || st != (Stamp{Step: 3, Due: 12345, Sender: 2}) {
		t.Errorf("stamp = %+v %v", st, ok)
	}
	// attribute values that look like other attributes or tags
	el = []byte(`<iq id=' type="x"' type="result"><bind><jid>a@b/c</jid></bind></iq>`)
	if got := string(Attr(el, "type")); got != "result" {
		t.Errorf("type = %q", got)
	}
	if got := string(ChildText(el, "jid")); got != "a@b/c" {
		t.Errorf("jid = %q", got)
	}
	if got := ChildText([]byte(`<message><bodyx>1</bodyx><body xml:lang='en'>2</body></message>`), "body"); string(got) != "2" {
		t.Errorf("body = %q", got)
	}
	if got := ChildText([]byte(`<message><body/></message>`), "body"); got == nil || len(got) != 0 {
		t.Errorf("empty body = %q", got)
	}
}

func TestStampRoundTrip(t *testing.T) {
	for _, s := range []Stamp{{0, 0, 0}, {7, 1<<62 + 5, 99999}, {1, 123456789, 3}} {
		b := AppendStamp(nil, s, 64)
		if len(b) < 64 {
			t.Errorf("len %d", len(b))
		}
		got, ok := ParseStamp(b)
		if !ok || got != s {
			t.Errorf("%+v -> %q -> %+v %v", s, b, got, ok)
		}
	}
	for _, bad := range []string{"", "s1.2", "x1.2.3.", "s.1.2.", "s1..2.", "s99999999999999999999999.1.1."} {
		if _, ok := ParseStamp([]byte(bad)); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	// 1..100000 µs, uniformly: quantile q is q*100000 µs
	for i := 1; i <= 100000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		want := float64(q * 100000 * 1000)
		got := float64(h.Quantile(q))
		if got < want || got > want*1.01 {
			t.Errorf("q%v = %v, want within 1%% above %v", q, time.Duration(got), time.Duration(want))
		}
	}
	if h.Max() != 100*time.Millisecond || h.Count() != 100000 {
		t.Errorf("max %v count %d", h.Max(), h.Count())
	}
	// every bucket's bounds are consistent with bucketOf
	for i := 0; i < buckets-1; i++ {
		hi := bucketHigh(i)
		if bucketOf(hi) != i || bucketOf(hi+1) != i+1 {
			t.Fatalf("bucket %d: high %d maps to %d, next to %d", i, hi, bucketOf(hi), bucketOf(hi+1))
		}
	}
	var m Histogram
	m.Record(time.Hour * 10) // beyond the range: last bucket, exact max
	m.Merge(&h)
	if m.Count() != 100001 || m.Max() != 10*time.Hour {
		t.Errorf("merge: count %d max %v", m.Count(), m.Max())
	}
}
