package s2s_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"parley/internal/s2s"
	"parley/internal/testserver"
)

// The admin socket answers "parley s2s list" and is private to the
// server's user.
func TestAdminSocket(t *testing.T) {
	ts := testserver.Start(t, fmt.Sprintf("[[host]]\ndomain = \"a.test\"\n[s2s]\nenabled = true\nlisten = [\"%s:5269\"]\n", loopback()))
	sock := filepath.Join(ts.Dir, "admin.sock")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket mode %v, want 0600", fi.Mode().Perm())
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://parley/s2s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []s2s.ConnInfo
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || list == nil {
		t.Fatalf("list %v, err %v", list, err)
	}
}
