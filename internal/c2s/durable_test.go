package c2s_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"parley/internal/config"
	"parley/internal/server"
	"parley/internal/testserver"
)

// childConfigEnv names the config file of a server this test binary runs
// as a child process (TestMain), so that a test can SIGKILL a real server
// process and look at what it left in storage.
const childConfigEnv = "PARLEY_TEST_CHILD_SERVER"

func TestMain(m *testing.M) {
	if path := os.Getenv(childConfigEnv); path != "" {
		runChildServer(path)
		return
	}
	os.Exit(m.Run())
}

// runChildServer serves the config at path until killed, after writing
// the client listener's address to path + ".addr".
func runChildServer(path string) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	srv, err := server.New(ctx, cfg, server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		err = srv.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := os.WriteFile(path+".addr", []byte(srv.C2SAddrs()[0].String()), 0o600); err != nil {
		os.Exit(2)
	}
	select {}
}

// XEP-0198 acknowledgements mean durable (issue 10): a server process
// killed with SIGKILL right after it acknowledged a client's messages has
// every one of them in storage after a restart.
func TestSMAcksSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child server process")
	}
	dir := t.TempDir()
	cfgText := fmt.Sprintf(`data_dir = %q
admin_socket = "-"
[c2s]
listen = ["127.0.0.1:0"]
direct_tls_listen = []
[http]
listen = ""
`, dir)
	path := filepath.Join(dir, "parley.toml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	// Accounts first, with an in-process server on the same storage.
	ts := testserver.Start(t, cfgText)
	ts.AddUsers(t, "password1", "alice", "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.Shutdown(ctx)

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childConfigEnv+"="+path)
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	var addr string
	waitFor(t, "the child server", func() bool {
		b, err := os.ReadFile(path + ".addr")
		addr = string(b)
		return err == nil && addr != ""
	})

	alice := testserver.Dial(t, addr)
	alice.Open("localhost")
	alice.StartTLS("localhost")
	alice.AuthPlain("localhost", "alice", "password1")
	alice.Bind("a")
	enableSM(t, alice, "resume='true'")
	const n = 50
	for i := range n {
		// bob is offline: each message goes to offline storage.
		alice.Send("<message to='bob@localhost' type='chat'><body>durable %d</body></message>", i)
	}
	if h := ackH(t, alice); h != n {
		t.Fatalf("h = %d, want %d", h, n)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	ts2 := testserver.Start(t, cfgText)
	msgs, err := ts2.Store().Offline().Pop(context.Background(), "bob@localhost")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, m := range msgs {
		for i := range n {
			if strings.Contains(string(m.Stanza), fmt.Sprintf(">durable %d<", i)) {
				got[fmt.Sprint(i)] = true
			}
		}
	}
	if len(got) != n {
		t.Fatalf("%d of the %d acknowledged messages survived SIGKILL", len(got), n)
	}
}
