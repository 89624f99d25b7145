// Package mitkdc starts a real MIT Kerberos KDC (Debian krb5-kdc and
// krb5-admin-server) for tests: its own realm, kdc.conf, krb5.conf,
// database and keytabs in a temporary directory, krb5kdc listening on a
// loopback address given by the test. Nothing is resolved through DNS:
// the krb5.conf it writes names the KDC by address and turns off DNS
// lookups of KDCs and realms, hostname canonicalisation and reverse DNS.
// Tests skip, with the reason logged, when the binaries are absent.
package mitkdc

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"parley/internal/listenwait"
)

// KDC is a running krb5kdc.
type KDC struct {
	Realm string
	Dir   string
	// Addr is the KDC's host:port (UDP and TCP).
	Addr string
	// Krb5Conf is the client configuration (KRB5_CONFIG).
	Krb5Conf string
	// Env is the environment for MIT tools and GSSAPI clients using this
	// KDC: KRB5_CONFIG, KRB5_KDC_PROFILE, a private KRB5CCNAME, and no
	// keytab or replay cache of the system.
	Env []string
}

var tools = []string{"krb5kdc", "kdb5_util", "kadmin.local", "kinit"}

// lookTool finds an MIT tool in PATH or the sbin directories Debian puts
// them in.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (install krb5-kdc, krb5-admin-server and krb5-user)", name)
}

// Start creates realm and starts krb5kdc on ip (a loopback address) at a
// free port. hosts are the host names mapped to the realm in krb5.conf's
// [domain_realm]. The KDC is stopped when the test ends.
func Start(t testing.TB, realm, ip string, hosts ...string) *KDC {
	t.Helper()
	for _, tool := range tools {
		if _, err := lookTool(tool); err != nil {
			t.Skipf("mitkdc: %v", err)
		}
	}
	dir := t.TempDir()
	k := &KDC{Realm: realm, Dir: dir, Krb5Conf: filepath.Join(dir, "krb5.conf")}
	kdcConf := filepath.Join(dir, "kdc.conf")
	k.Env = append(os.Environ(),
		"KRB5_CONFIG="+k.Krb5Conf,
		"KRB5_KDC_PROFILE="+kdcConf,
		"KRB5CCNAME=FILE:"+filepath.Join(dir, "ccache"),
		"KRB5_KTNAME=FILE:"+filepath.Join(dir, "none.keytab"),
		"KRB5RCACHETYPE=none",
		"KRB5_TRACE="+filepath.Join(dir, "trace.log"),
	)
	write(t, filepath.Join(dir, "kadm5.acl"), "")
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		k.Addr = net.JoinHostPort(ip, strconv.Itoa(freePort(t, ip)))
		k.writeConfig(t, kdcConf, hosts)
		if attempt == 0 {
			k.run(t, "kdb5_util", "create", "-s", "-r", realm, "-P", "master-"+realm)
		}
		if lastErr = k.startKDC(t); lastErr == nil {
			return k
		}
	}
	t.Fatalf("mitkdc: %v", lastErr)
	return nil
}

// writeConfig writes kdc.conf and krb5.conf for k.Addr.
func (k *KDC) writeConfig(t testing.TB, kdcConf string, hosts []string) {
	t.Helper()
	write(t, kdcConf, fmt.Sprintf(`[kdcdefaults]
	kdc_listen = %[2]s
	kdc_tcp_listen = %[2]s
[realms]
	%[1]s = {
		database_name = %[3]s/principal
		key_stash_file = %[3]s/stash
		acl_file = %[3]s/kadm5.acl
		kdc_listen = %[2]s
		kdc_tcp_listen = %[2]s
		max_life = 10h
		supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
	}
[logging]
	kdc = FILE:%[3]s/kdc.log
`, k.Realm, k.Addr, k.Dir))
	var dr strings.Builder
	for _, h := range hosts {
		fmt.Fprintf(&dr, "\t%s = %s\n", h, k.Realm)
	}
	write(t, k.Krb5Conf, fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_kdc = false
	dns_lookup_realm = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 1
	default_ccache_name = FILE:%[3]s/ccache
	default_keytab_name = FILE:%[3]s/none.keytab
[realms]
	%[1]s = {
		kdc = %[2]s
		admin_server = %[2]s
	}
[domain_realm]
%[4]s`, k.Realm, k.Addr, k.Dir, dr.String()))
}

// startKDC runs krb5kdc until the test ends and waits until it listens on
// k.Addr itself: another test binary may have been handed the same port
// (listenwait), and then this KDC exits and the attempt is an error.
func (k *KDC) startKDC(t testing.TB) error {
	t.Helper()
	bin, _ := lookTool("krb5kdc")
	cmd := exec.Command(bin, "-n", "-r", k.Realm)
	cmd.Env = k.Env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("mitkdc: krb5kdc: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
	}
	if err := listenwait.Wait(cmd.Process.Pid, k.Addr, done, 20*time.Second); err != nil {
		stop()
		log, _ := os.ReadFile(filepath.Join(k.Dir, "kdc.log"))
		return fmt.Errorf("krb5kdc did not listen on %s: %v\n%s\n%s", k.Addr, err, out.String(), log)
	}
	t.Cleanup(stop)
	return nil
}

// AddUser creates principal name with password.
func (k *KDC) AddUser(t testing.TB, name, password string) {
	t.Helper()
	k.run(t, "kadmin.local", "-r", k.Realm, "-q", fmt.Sprintf("addprinc -pw %s %s", password, name))
}

// AddService creates a service principal with a random key and writes its
// keys to a new keytab, whose path it returns.
func (k *KDC) AddService(t testing.TB, principal string) string {
	t.Helper()
	kt := filepath.Join(k.Dir, strings.ReplaceAll(principal, "/", "_")+".keytab")
	k.run(t, "kadmin.local", "-r", k.Realm, "-q", "addprinc -randkey "+principal)
	k.run(t, "kadmin.local", "-r", k.Realm, "-q", fmt.Sprintf("ktadd -k %s %s", kt, principal))
	return kt
}

// Kinit gets a ticket-granting ticket for name into the KDC's ccache.
func (k *KDC) Kinit(t testing.TB, name, password string) {
	t.Helper()
	bin, _ := lookTool("kinit")
	cmd := exec.Command(bin, name)
	cmd.Env = k.Env
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mitkdc: kinit %s: %v\n%s", name, err, out)
	}
}

func (k *KDC) run(t testing.TB, tool string, args ...string) {
	t.Helper()
	bin, _ := lookTool(tool)
	cmd := exec.Command(bin, args...)
	cmd.Env = k.Env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mitkdc: %s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
}

func write(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freePort finds a port free for both TCP and UDP on ip.
func freePort(t testing.TB, ip string) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Skipf("mitkdc: cannot listen on %s: %v", ip, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatalf("mitkdc: no free port on %s", ip)
	return 0
}
