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
	"parley/internal/storage"
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
	ts.AddUsers(t, "password1", "alice", "bob", "carol")
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

	login := func(user, res string) *testserver.Client {
		c := testserver.Dial(t, addr)
		c.Open("localhost")
		c.StartTLS("localhost")
		c.AuthPlain("localhost", user, "password1")
		c.Bind(res)
		return c
	}
	// carol is online: what alice sends her is in carol's session queue
	// and, durably, only in the archives, which write in batches.
	carol := login("carol", "c")
	carol.Send("<presence/>")
	carol.ExpectStanza("presence")
	alice := login("alice", "a")
	enableSM(t, alice, "resume='true'")
	const n = 50
	for i := range n {
		// bob is offline: each message goes to offline storage.
		alice.Send("<message to='bob@localhost' type='chat'><body>durable %d</body></message>", i)
		alice.Send("<message to='carol@localhost/c' type='chat'><body>online %d</body></message>", i)
	}
	if h := ackH(t, alice); h != 2*n {
		t.Fatalf("h = %d, want %d", h, 2*n)
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
		t.Fatalf("%d of the %d acknowledged messages for an offline account survived SIGKILL", len(got), n)
	}
	for _, owner := range []string{"alice@localhost", "carol@localhost"} {
		page, err := ts2.Store().Archive().Query(context.Background(), owner, storage.ArchiveQuery{With: map[bool]string{true: "carol@localhost", false: "alice@localhost"}[owner == "alice@localhost"]})
		if err != nil {
			t.Fatal(err)
		}
		if page.Count != n {
			t.Fatalf("%s's archive holds %d of the %d acknowledged messages to carol after SIGKILL", owner, page.Count, n)
		}
	}
}
