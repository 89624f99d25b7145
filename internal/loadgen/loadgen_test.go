package loadgen_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"parley/internal/loadgen"
	"parley/internal/testserver"
)

// The generator against the real server, in process, at small scale: every
// scenario must see everything it sent delivered, with no errors. These
// assert counts, never timings.

const parleyLimits = `
[limits]
max_connections_per_ip = 100000
rate_bytes_per_second = 104857600
rate_burst_bytes = 104857600
[host.muc]
default_occupants = 200
`

func startParley(t *testing.T, extra string, users int) *testserver.TS {
	t.Helper()
	ts := testserver.Start(t, "[[host]]\ndomain = \"bench.test\"\n"+extra+parleyLimits)
	for i := 1; i <= users; i++ {
		ts.AddUser(t, fmt.Sprintf("bench%d", i), fmt.Sprintf("benchpass%d", i))
	}
	return ts
}

func options(addr, tls, mech, scenario string, users int, rates ...float64) *loadgen.Options {
	o := &loadgen.Options{
		Target:      loadgen.Target{Addr: addr, Domain: "bench.test", TLS: tls, Mech: mech, Resource: "bench", Timeout: 30 * time.Second},
		UserPattern: "bench%d", PassPattern: "benchpass%d", First: 1, Users: users,
		Scenario: scenario, Rates: rates, StepDuration: time.Second, Drain: 10 * time.Second,
		MsgSize: 64, Contacts: 4, Room: "bench@conference.bench.test", Setup: 8, Settle: 200 * time.Millisecond,
		PIDs: []int{os.Getpid()},
	}
	if testing.Verbose() {
		o.Log = os.Stderr
	}
	return o
}

func checkRun(t *testing.T, o *loadgen.Options) {
	t.Helper()
	rs, err := loadgen.Run(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		t.Fatal("no results")
	}
	for _, r := range rs {
		t.Log(r.Line())
		if r.Sent == 0 || r.Delivered == 0 || r.Lost() > 0 || r.Errors > 0 || r.Skipped > 0 {
			t.Errorf("step %d: sent %d, expected %d, delivered %d, lost %d, errors %d, skipped %d",
				r.Step, r.Sent, r.Expected, r.Delivered, r.Lost(), r.Errors, r.Skipped)
		}
		if r.Hist.Count() != r.Delivered {
			t.Errorf("step %d: %d latencies recorded for %d deliveries", r.Step, r.Hist.Count(), r.Delivered)
		}
	}
}

func TestParleyScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs several second-long load steps")
	}
	ts := startParley(t, "", 10)
	starttls, direct := ts.StartTLSAddr(), ts.DirectTLSAddr()
	t.Run("login/PLAIN/starttls", func(t *testing.T) {
		checkRun(t, options(starttls, loadgen.TLSStartTLS, "PLAIN", loadgen.ScenarioLogin, 10, 20))
	})
	t.Run("login/SCRAM-SHA-1/direct", func(t *testing.T) {
		checkRun(t, options(direct, loadgen.TLSDirect, "SCRAM-SHA-1", loadgen.ScenarioLogin, 10, 20))
	})
	t.Run("login/SCRAM-SHA-256/starttls", func(t *testing.T) {
		checkRun(t, options(starttls, loadgen.TLSStartTLS, "SCRAM-SHA-256", loadgen.ScenarioLogin, 10, 20))
	})
	t.Run("chat", func(t *testing.T) {
		checkRun(t, options(starttls, loadgen.TLSStartTLS, "PLAIN", loadgen.ScenarioChat, 10, 100, 300))
	})
	t.Run("presence", func(t *testing.T) {
		checkRun(t, options(starttls, loadgen.TLSStartTLS, "PLAIN", loadgen.ScenarioPresence, 8, 40))
	})
	t.Run("muc", func(t *testing.T) {
		checkRun(t, options(starttls, loadgen.TLSStartTLS, "SCRAM-SHA-1", loadgen.ScenarioMUC, 6, 40))
	})
	t.Run("idle", func(t *testing.T) {
		o := options(direct, loadgen.TLSDirect, "PLAIN", loadgen.ScenarioIdle, 10)
		o.StepDuration = 200 * time.Millisecond
		rs, err := loadgen.Run(o)
		if err != nil {
			t.Fatal(err)
		}
		r := rs[0]
		t.Log(r.Line())
		if r.Sessions != 10 || r.Delivered != 10 || r.Errors != 0 || r.TargetRSSKiB == 0 {
			t.Errorf("idle: %+v", r)
		}
	})
}

func TestParleyPlaintext(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	ts := startParley(t, "[c2s]\nlisten = [\"127.0.0.1:0\"]\ndirect_tls_listen = []\nrequire_tls = false\nallow_plain_without_tls = true\n", 4)
	checkRun(t, options(ts.StartTLSAddr(), loadgen.TLSNone, "PLAIN", loadgen.ScenarioChat, 4, 100))
}

func TestWrongPasswordIsAnAuthError(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	ts := startParley(t, "", 1)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"} {
		a := &loadgen.Account{User: "bench1", Password: "wrong"}
		_, err := loadgen.Login(&loadgen.Target{Addr: ts.StartTLSAddr(), Domain: "bench.test", TLS: loadgen.TLSStartTLS, Mech: mech, Timeout: 30 * time.Second}, a)
		var le *loadgen.LoginError
		if !errors.As(err, &le) || le.Phase != loadgen.PhaseAuth {
			t.Errorf("%s: got %v, want an auth-phase error", mech, err)
		}
	}
}

func startReflector(t *testing.T, tls bool) string {
	t.Helper()
	rf := &loadgen.Reflector{Domain: "bench.test"}
	if tls {
		c, err := loadgen.SelfSignedTLS("bench.test")
		if err != nil {
			t.Fatal(err)
		}
		rf.TLS = c
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go rf.Serve(ln)
	return ln.Addr().String()
}

func TestReflector(t *testing.T) {
	plain, secure := startReflector(t, false), startReflector(t, true)
	t.Run("chat/plain", func(t *testing.T) {
		checkRun(t, options(plain, loadgen.TLSNone, "PLAIN", loadgen.ScenarioChat, 20, 500))
	})
	t.Run("chat/starttls", func(t *testing.T) {
		checkRun(t, options(secure, loadgen.TLSStartTLS, "PLAIN", loadgen.ScenarioChat, 20, 500))
	})
	t.Run("login/starttls", func(t *testing.T) {
		checkRun(t, options(secure, loadgen.TLSStartTLS, "PLAIN", loadgen.ScenarioLogin, 5, 30))
	})
}
