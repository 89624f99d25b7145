//go:build linux

package c2s_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"parley/internal/certs"
	"parley/internal/config"
	"parley/internal/sasl"
)

// threadCPU is the CPU time of the calling OS thread
// (CLOCK_THREAD_CPUTIME_ID): with the goroutine locked to its thread it
// counts that goroutine's work only, not the client's in the same process.
func threadCPU() time.Duration {
	const clockThreadCPUTime = 3
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic(e)
	}
	return time.Duration(ts.Nano())
}

// BenchmarkLoginCost is the reference for issue 15's login-storm target
// ("logins/s within 90 % of the per-core cost of one TLS handshake plus one
// PBKDF2 at the configured iterations"): the server side of one TLS
// handshake with what Parley uses by default (its generated self-signed
// P-256 certificate, certs.Manager's server config, Go's default key
// exchange as offered by a default client, as parley-bench's is), and one
// PBKDF2 at sasl.DefaultIterations (what checking a PLAIN password costs:
// sasl.VerifyPassword). server-µs/op is the CPU of the server's thread
// alone; logins/s/core is its inverse. A SCRAM login costs the server no
// PBKDF2 (the client derives the key), so for SCRAM the handshake alone
// is the closer reference.
func BenchmarkLoginCost(b *testing.B) {
	cfg, err := config.Parse([]byte(fmt.Sprintf("data_dir = %q\n", b.TempDir())))
	if err != nil {
		b.Fatal(err)
	}
	cm, err := certs.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	domain := cfg.Hosts[0].Domain
	serverTLS := cm.ServerConfig()
	clientTLS := &tls.Config{ServerName: domain, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	creds, err := sasl.DeriveCredentials("bench-password-1", sasl.DefaultIterations)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()

	// handshake runs one TLS handshake, client in another goroutine; the
	// server side runs on the caller's thread.
	handshake := func(b *testing.B) {
		errc := make(chan error, 1)
		go func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			tc := tls.Client(c, clientTLS)
			err = tc.Handshake()
			if err == nil {
				_, err = tc.Read(make([]byte, 1)) // wait for the server's byte
			}
			errc <- err
		}()
		nc, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		ts := tls.Server(nc, serverTLS)
		if err := ts.Handshake(); err != nil {
			b.Fatal(err)
		}
		if _, err := ts.Write([]byte{'x'}); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		_ = ts.Close()
	}
	pbkdf2 := func(b *testing.B) {
		if !sasl.VerifyPassword(creds, "bench-password-1") {
			b.Fatal("password not verified")
		}
	}
	for _, bc := range []struct {
		name  string
		steps []func(*testing.B)
	}{
		{"tls-handshake", []func(*testing.B){handshake}},
		{fmt.Sprintf("pbkdf2-%d", sasl.DefaultIterations), []func(*testing.B){pbkdf2}},
		{"tls-handshake+pbkdf2", []func(*testing.B){handshake, pbkdf2}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var cpu time.Duration
			for b.Loop() {
				t0 := threadCPU()
				for _, step := range bc.steps {
					step(b)
				}
				cpu += threadCPU() - t0
			}
			us := float64(cpu.Microseconds()) / float64(b.N)
			b.ReportMetric(us, "server-µs/op")
			b.ReportMetric(1e6/us, "logins/s/core")
		})
	}
}
