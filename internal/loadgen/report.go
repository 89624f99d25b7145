package loadgen

import (
	"fmt"
	"io"
	"strings"
	"time"
)

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// Achieved is deliveries (or successful logins) per second of the step.
func (r *StepResult) Achieved() float64 {
	if r.Seconds == 0 {
		return 0
	}
	return float64(r.Delivered) / r.Seconds
}

// SentRate is what the generator actually sent per second.
func (r *StepResult) SentRate() float64 {
	if r.Seconds == 0 {
		return 0
	}
	return float64(r.Sent) / r.Seconds
}

// TargetUSPer is the server's CPU per delivery (or login), in µs.
func (r *StepResult) TargetUSPer() float64 { return r.perDelivery(r.TargetCPU) }

// perDelivery is CPU seconds per delivery (or login), in µs.
func (r *StepResult) perDelivery(cpu float64) float64 {
	if r.Delivered == 0 {
		return 0
	}
	return cpu * 1e6 / float64(r.Delivered)
}

// SelfUSPer is the generator's CPU per delivery (or login), in µs.
func (r *StepResult) SelfUSPer() float64 {
	if r.Delivered == 0 {
		return 0
	}
	return r.SelfCPU * 1e6 / float64(r.Delivered)
}

// KiBPerSession is the idle scenario's server memory per session.
func (r *StepResult) KiBPerSession() float64 {
	if r.Sessions == 0 || r.TargetRSSKiB == 0 {
		return 0
	}
	return float64(r.TargetRSSKiB-r.TargetBefore) / float64(r.Sessions)
}

// Line is a one-line human summary.
func (r *StepResult) Line() string {
	h := r.Hist
	var b strings.Builder
	if r.Scenario == ScenarioIdle {
		fmt.Fprintf(&b, "idle: %d sessions (%d failed), %d still connected; server RSS %d -> %d KiB: %.1f KiB/session",
			r.Sessions, r.Errors, r.Delivered, r.TargetBefore, r.TargetRSSKiB, r.KiBPerSession())
		return b.String()
	}
	fmt.Fprintf(&b, "%s step %d: offered %.0f/s sent %.0f/s; delivered %d of %d (lost %d) = %.0f/s; errors %d",
		r.Scenario, r.Step, r.Offered, r.SentRate(), r.Delivered, r.Expected, r.Lost(), r.Achieved(), r.Errors)
	if r.Skipped > 0 {
		fmt.Fprintf(&b, ", skipped %d", r.Skipped)
	}
	fmt.Fprintf(&b, "; latency ms p50 %.2f p99 %.2f p99.9 %.2f max %.2f mean %.2f", ms(h.Quantile(.5)), ms(h.Quantile(.99)), ms(h.Quantile(.999)), ms(h.Max()), ms(h.Mean()))
	if sh := r.Server; sh != nil {
		fmt.Fprintf(&b, "; server-side (from slot) %.0f logins, ms mean %.2f p99 %.2f", sh.Count, sh.Mean()*1e3, sh.Quantile(.99)*1e3)
	}
	if r.TargetCPU > 0 {
		fmt.Fprintf(&b, "; server %.1f µs CPU each", r.TargetUSPer())
		if len(r.TargetCPUEach) > 0 {
			b.WriteString(" (by process")
			for _, c := range r.TargetCPUEach {
				fmt.Fprintf(&b, " %.1f", r.perDelivery(c))
			}
			b.WriteString(")")
		}
		fmt.Fprintf(&b, ", RSS %d KiB", r.TargetRSSKiB)
	}
	fmt.Fprintf(&b, "; generator %.1f µs CPU each", r.SelfUSPer())
	if r.FirstError != "" {
		fmt.Fprintf(&b, "; first error: %s", r.FirstError)
	}
	return b.String()
}

// TSVHeader names the columns of WriteTSV.
const TSVHeader = "label\tscenario\ttls\tmech\tstep\toffered_per_s\tseconds\tsent\texpected\tdelivered\tlost\terrors\tskipped\tachieved_per_s\tp50_ms\tp99_ms\tp999_ms\tmax_ms\tmean_ms\tserver_cpu_s\tserver_us_per\tserver_rss_kib\tserver_rss_before_kib\tkib_per_session\tgen_cpu_s\tgen_us_per\tsessions\tserver_logins\tserver_login_mean_ms\tserver_login_p99_ms\twindow_s\tserver_cpu_each_s"

// WriteTSV writes one row per step (no header). window_s is the time
// over which CPU was measured (the step and its drain). The last column,
// server_cpu_each_s, is TargetCPUEach comma-separated (empty with one
// server process).
func WriteTSV(w io.Writer, label string, t *Target, rs []*StepResult) error {
	for _, r := range rs {
		h := r.Hist
		server := "\t\t" // not read: empty columns
		if sh := r.Server; sh != nil {
			server = fmt.Sprintf("%.0f\t%.3f\t%.3f", sh.Count, sh.Mean()*1e3, sh.Quantile(.99)*1e3)
		}
		each := make([]string, len(r.TargetCPUEach))
		for i, c := range r.TargetCPUEach {
			each[i] = fmt.Sprintf("%.3f", c)
		}
		_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%.1f\t%.2f\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.2f\t%d\t%d\t%.2f\t%.3f\t%.2f\t%d\t%s\t%.3f\t%s\n",
			label, r.Scenario, t.TLS, t.Mech, r.Step, r.Offered, r.Seconds, r.Sent, r.Expected, r.Delivered, r.Lost(), r.Errors, r.Skipped,
			r.Achieved(), ms(h.Quantile(.5)), ms(h.Quantile(.99)), ms(h.Quantile(.999)), ms(h.Max()), ms(h.Mean()),
			r.TargetCPU, r.TargetUSPer(), r.TargetRSSKiB, r.TargetBefore, r.KiBPerSession(), r.SelfCPU, r.SelfUSPer(), r.Sessions,
			server, r.Window, strings.Join(each, ","))
		if err != nil {
			return err
		}
	}
	return nil
}
