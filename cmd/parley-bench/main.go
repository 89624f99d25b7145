// Command parley-bench is an XMPP load generator that drives any server
// (Parley, Prosody, ejabberd, ...) over ordinary client streams, and a
// trivial target to measure the generator itself against.
//
//	parley-bench run -addr 127.0.0.1:5222 -domain example.test -scenario chat -rates 1000,2000 ...
//	parley-bench reflect -addr 127.0.0.1:5222 -domain example.test [-tls]
//
// It is its own command, not a `parley` subcommand: it links none of the
// server, runs against other servers as well as Parley, and can be built
// and copied to a load machine alone. See bench/README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"parley/internal/loadgen"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "reflect":
		err = reflect(os.Args[2:])
	case "-h", "--help", "help":
		usage()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley-bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  parley-bench run [flags]       drive a server (parley-bench run -h for flags)
  parley-bench reflect [flags]   serve the trivial target the generator measures itself against
`)
	os.Exit(2)
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var o loadgen.Options
	addrs := fs.String("addr", "127.0.0.1:5222", "server c2s address host:port, or several comma-separated (a cluster's nodes): session i connects to the i-th modulo their number")
	fs.StringVar(&o.Target.Domain, "domain", "bench.test", "XMPP domain of the accounts")
	fs.StringVar(&o.Target.TLS, "tls", "starttls", "none, starttls or direct")
	fs.StringVar(&o.Target.Mech, "mech", "PLAIN", "PLAIN, SCRAM-SHA-1 or SCRAM-SHA-256")
	fs.StringVar(&o.Target.Resource, "resource", "bench", "resource to bind")
	fs.DurationVar(&o.Target.Timeout, "timeout", 30*time.Second, "bound on each login and setup step")
	fs.StringVar(&o.UserPattern, "user", "bench%d", "account local part; %d is the account index")
	fs.StringVar(&o.PassPattern, "password", "benchpass%d", "password; %d is the account index")
	fs.IntVar(&o.First, "first", 1, "first account index")
	fs.IntVar(&o.Users, "users", 100, "accounts: online users, room occupants, login pool, or idle sessions")
	fs.StringVar(&o.Scenario, "scenario", "chat", "login, chat, presence, muc or idle")
	rates := fs.String("rates", "1000", "offered rates per second, one step each, comma-separated")
	fs.DurationVar(&o.StepDuration, "step", 10*time.Second, "duration of each step (idle: how long sessions stay idle)")
	fs.DurationVar(&o.Drain, "drain", 3*time.Second, "after each step, wait at most this long for deliveries in flight")
	fs.IntVar(&o.MsgSize, "size", 64, "message body (presence status) bytes, stamp included")
	fs.IntVar(&o.Contacts, "contacts", 10, "presence: contacts per roster (even)")
	fs.StringVar(&o.Room, "room", "", "muc: room JID (default bench@conference.<domain>)")
	fs.IntVar(&o.Setup, "setup", 32, "logins in parallel while setting up sessions")
	fs.IntVar(&o.MaxInflight, "max-inflight", 4096, "login: concurrent logins before arrivals are skipped")
	fs.DurationVar(&o.Settle, "settle", 3*time.Second, "idle: wait after the last login before measuring memory")
	fs.StringVar(&o.MetricsURL, "metrics", "", "login: the target's Prometheus URL (Parley: http://<http listen>/metrics); reports its server-side login time per step")
	fs.StringVar(&o.ServerHist, "metrics-hist", "parley_login_seconds", "login: the histogram read from -metrics")
	sources := fs.String("sources", "", "local IP addresses to connect from, comma-separated, one per account in turn (stands for many clients)")
	pids := fs.String("pid", "", "the server's process id, or several comma-separated (a cluster's nodes and NATS servers): report their summed CPU and RSS (with descendants) from /proc")
	fs.BoolVar(&o.StopSaturated, "stop-saturated", false, "stop after a step that lost over 10% or had a median latency over 1 s")
	label := fs.String("label", "", "label for the TSV rows (e.g. the server's name)")
	tsv := fs.String("tsv", "", "append one row per step to this TSV file (header written when the file is new)")
	strict := fs.Bool("strict", false, "exit 1 if anything was lost, failed or skipped")
	quiet := fs.Bool("q", false, "no progress lines")
	cpuprofile := fs.String("cpuprofile", "", "write the generator's own CPU profile to this file")
	fs.Parse(args)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for _, f := range strings.Split(*rates, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("bad rate %q", f)
		}
		o.Rates = append(o.Rates, v)
	}
	for _, a := range strings.Split(*sources, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if net.ParseIP(a) == nil {
			return fmt.Errorf("bad source address %q", a)
		}
		o.Target.Sources = append(o.Target.Sources, a)
	}
	var err error
	if o.Addrs, err = loadgen.ParseAddrs(*addrs); err != nil {
		return err
	}
	o.Target.Addr = o.Addrs[0]
	if o.PIDs, err = loadgen.ParsePIDs(*pids); err != nil {
		return err
	}
	switch o.Target.TLS {
	case loadgen.TLSNone, loadgen.TLSStartTLS, loadgen.TLSDirect:
	default:
		return fmt.Errorf("-tls must be none, starttls or direct")
	}
	if o.Room == "" {
		o.Room = "bench@conference." + o.Target.Domain
	}
	if !*quiet {
		o.Log = os.Stderr
	}
	results, err := loadgen.Run(&o)
	if err != nil {
		return err
	}
	for _, r := range results {
		fmt.Println(r.Line())
	}
	if *tsv != "" {
		_, statErr := os.Stat(*tsv)
		f, err := os.OpenFile(*tsv, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		if errors.Is(statErr, os.ErrNotExist) {
			fmt.Fprintln(f, loadgen.TSVHeader)
		}
		if err := loadgen.WriteTSV(f, *label, &o.Target, results); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if *strict {
		for _, r := range results {
			if r.Lost() > 0 || r.Errors > 0 || r.Skipped > 0 || r.Delivered == 0 {
				return fmt.Errorf("step %d: lost %d, errors %d, skipped %d, delivered %d", r.Step, r.Lost(), r.Errors, r.Skipped, r.Delivered)
			}
		}
	}
	return nil
}

func reflect(args []string) error {
	fs := flag.NewFlagSet("reflect", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:5222", "listen address")
	domain := fs.String("domain", "bench.test", "XMPP domain")
	useTLS := fs.Bool("tls", false, "offer (and require) STARTTLS with a throwaway self-signed certificate")
	fs.Parse(args)
	rf := &loadgen.Reflector{Domain: *domain}
	if *useTLS {
		c, err := loadgen.SelfSignedTLS(*domain)
		if err != nil {
			return err
		}
		rf.TLS = c
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; ln.Close() }()
	fmt.Fprintf(os.Stderr, "parley-bench: reflecting on %s for %s\n", ln.Addr(), *domain)
	return rf.Serve(ln)
}
