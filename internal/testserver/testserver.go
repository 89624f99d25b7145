// Package testserver boots a whole Parley server inside a test, on free
// loopback ports, and gives tests a raw-XML client to talk to it. It is the
// harness of every in-process integration test: the server under test is the
// real one, with real TCP, TLS, SASL and storage.
package testserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"parley/internal/config"
	"parley/internal/logring"
	"parley/internal/sasl"
	"parley/internal/server"
	"parley/internal/storage"
	"parley/internal/stream"
)

// failureLogLines is how many of the server's last log lines a failed
// test prints.
const failureLogLines = 200

// TS is a running test server.
type TS struct {
	*server.Server
	Config *config.Config
	Dir    string
	// recent holds the server's last log lines (LogLines).
	recent *logring.Ring
}

// LogLines returns the server's last log lines (at most the 200 kept),
// oldest first: for tests of what the server tells its operators.
func (ts *TS) LogLines() []string { return ts.recent.Lines(failureLogLines) }

// Start boots a server from config text (TOML) with test-friendly defaults
// laid under it: data in t.TempDir(), listeners on 127.0.0.1:0, no HTTP
// unless asked, a short auth-failure delay. The server is shut down when the
// test ends.
func Start(t testing.TB, configText string) *TS {
	t.Helper()
	dir := t.TempDir()
	text := configText
	if !strings.Contains(text, "data_dir") {
		text = fmt.Sprintf("data_dir = %q\n", dir) + text
	}
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("testserver: config: %v", err)
	}
	if !strings.Contains(configText, "[c2s]") {
		cfg.C2S.Listen = []string{"127.0.0.1:0"}
		cfg.C2S.DirectTLSListen = []string{"127.0.0.1:0"}
	}
	if !strings.Contains(configText, "[http]") {
		empty := ""
		cfg.HTTP.Listen = &empty
	}
	if *cfg.HTTPS.Listen == ":5443" {
		// The default: loopback and a free port instead, bound only when
		// a test enables something served there (file upload, a
		// transport). A test that sets listen keeps its own.
		local := "127.0.0.1:0"
		cfg.HTTPS.Listen = &local
	}
	if !strings.Contains(configText, "admin_socket") && !strings.Contains(configText, "[s2s]") {
		// Unix socket paths are short (108 bytes) and t.TempDir() paths
		// can be long; tests that need the socket configure it.
		cfg.AdminSocket = "-"
	}
	if !strings.Contains(configText, "auth_failure_delay") {
		cfg.Limits.AuthFailureDelay.Duration = 10 * time.Millisecond
	}
	if os.Getenv("PARLEY_TEST_POSTGRES") != "" && !strings.Contains(configText, "storage") {
		cfg.Storage = "postgres"
		cfg.PostgresDSN = os.Getenv("PARLEY_TEST_POSTGRES")
		t.Skip("testserver: PostgreSQL runs are driven by storetest")
	}
	// The server's last log lines are printed when the test fails, so a
	// failure seen only in CI comes with the server's side of it;
	// PARLEY_TEST_LOG=1 prints every line as it is logged.
	recent := logring.New(failureLogLines)
	var logw io.Writer = recent
	if os.Getenv("PARLEY_TEST_LOG") != "" {
		logw = io.MultiWriter(recent, os.Stderr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testserver: the server's last log lines:\n%s", strings.Join(recent.Lines(failureLogLines), "\n"))
		}
	})
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	srv, err := server.New(ctx, cfg, server.Options{Log: log})
	if err != nil {
		t.Fatalf("testserver: new: %v", err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("testserver: start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &TS{Server: srv, Config: cfg, Dir: filepath.Clean(dir), recent: recent}
}

// HTTPSClient returns a client for the public HTTPS listener: every request
// goes to HTTPSAddr() whatever its URL's host, so the URLs the server hands
// out (https://localhost:PORT/...) work without DNS; TLS accepts the
// self-signed certificate (SNI is the URL's host), and HTTP/2 is used when
// offered.
func (ts *TS) HTTPSClient(t testing.TB) *http.Client {
	t.Helper()
	a := ts.HTTPSAddr()
	if a == nil {
		t.Fatal("testserver: the HTTPS listener is not bound")
	}
	addr := a.String()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
		},
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Domain returns the first virtual host.
func (ts *TS) Domain() string { return ts.Config.Hosts[0].Domain }

// AddUser creates an account on the first host (or on host if the user is
// given as user@host).
func (ts *TS) AddUser(t testing.TB, user, password string) {
	t.Helper()
	host := ts.Domain()
	if u, h, ok := strings.Cut(user, "@"); ok {
		user, host = u, h
	}
	creds, err := sasl.DeriveCredentials(password, 4096)
	if err != nil {
		t.Fatal(err)
	}
	err = ts.Store().Accounts().Create(context.Background(), storage.Account{
		Host: host, Username: user, Creds: creds, CreatedAt: time.Now().UTC(),
	})
	if err != nil {
		t.Fatalf("testserver: add user %s: %v", user, err)
	}
}

// StartTLSAddr is the STARTTLS listener's address.
func (ts *TS) StartTLSAddr() string { return ts.C2SAddrs()[0].String() }

// DirectTLSAddr is the direct TLS listener's address.
func (ts *TS) DirectTLSAddr() string { return ts.C2SAddrs()[len(ts.Config.C2S.Listen)].String() }

// AddUsers creates several accounts with one password.
func (ts *TS) AddUsers(t testing.TB, password string, users ...string) {
	t.Helper()
	for _, u := range users {
		ts.AddUser(t, u, password)
	}
}

// GrantSubscription gives contact a presence subscription to owner (owner's
// roster item with subscription "from"), as if owner had approved it; both
// are localparts of the first host.
func (ts *TS) GrantSubscription(t testing.TB, owner, contact string) {
	t.Helper()
	_, err := ts.Store().Roster().Put(context.Background(), owner+"@"+ts.Domain(),
		storage.RosterItem{JID: contact + "@" + ts.Domain(), Subscription: storage.SubFrom})
	if err != nil {
		t.Fatal(err)
	}
}

// WaitNoPooledDrains waits until no goroutine of a stream.DrainPool is
// left: each ends stream.DefaultDrainLinger after its last drain. A leak
// test takes its goroutine baseline after it, so that the baseline does
// not count pooled goroutines that end by themselves later (which would
// let as many leaked ones pass).
func WaitNoPooledDrains(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(stream.DefaultDrainLinger + 5*time.Second)
	for {
		if _, all := stream.WaitingDrains(); all == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("pooled drain goroutines still running after their linger")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
