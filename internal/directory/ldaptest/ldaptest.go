// Package ldaptest starts a throwaway OpenLDAP slapd for tests: a generated
// slapd.conf (mdb backend, core/cosine/inetorgperson/nis schemas from
// /etc/ldap/schema, and RFC 3112 authPassword) in a temporary directory, loaded with an LDIF fixture
// by slapadd, listening on a free 127.0.0.1 port for LDAP (with StartTLS)
// and LDAPS under a generated certificate. It never touches the system's
// own slapd instance.
//
// Tests skip when slapd is not installed, and packages that call Main from
// TestMain say so in one line naming the Debian package to install (see
// Main); with CI set, a missing slapd fails the tests instead.
package ldaptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"parley/internal/listenwait"
)

// Fixture is the default LDIF: people (one disabled), groups of the three
// kinds, persistent room entries and a service account. Its passwords are
// "<uid>-pass"; the service account is ServiceDN / ServicePassword.
//
//go:embed testdata/fixture.ldif
var Fixture string

// AuthPasswordSchema defines RFC 3112's authPassword and
// authPasswordObject, which slapd does not build in; WriteConfig includes
// it, so entries can hold RFC 5803 SCRAM secrets.
//
//go:embed testdata/authpassword.schema
var AuthPasswordSchema string

// Names in Fixture.
const (
	Suffix          = "dc=example,dc=test"
	RootDN          = "cn=admin,dc=example,dc=test"
	RootPassword    = "root-secret"
	ServiceDN       = "cn=parley,ou=services,dc=example,dc=test"
	ServicePassword = "parley-pass"
	PeopleBase      = "ou=people,dc=example,dc=test"
	GroupBase       = "ou=groups,dc=example,dc=test"
	RoomBase        = "ou=rooms,dc=example,dc=test"
)

// Schema is Parley's own schema (host policy entries, room titles), in
// slapd.conf form; docs/directory-schema.ldif has it for cn=config.
//
//go:embed testdata/parley.schema
var Schema string

// Server is one running slapd.
type Server struct {
	// Addr is the LDAP (StartTLS-capable) address, LDAPSAddr the LDAPS one.
	Addr, LDAPSAddr string
	// CAFile is the PEM certificate slapd serves (self-signed for
	// 127.0.0.1), usable as ca_file.
	CAFile string
	Dir    string

	cmd  *exec.Cmd
	done chan struct{}
}

const confTemplate = `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {{.Dir}}/authpassword.schema
include {{.Dir}}/parley.schema
pidfile {{.Dir}}/slapd.pid
argsfile {{.Dir}}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
authz-policy to
TLSCertificateFile {{.Dir}}/cert.pem
TLSCertificateKeyFile {{.Dir}}/key.pem
sizelimit unlimited
database mdb
maxsize 10485760
suffix "{{.Suffix}}"
rootdn "{{.RootDN}}"
rootpw {{.RootPassword}}
directory {{.Dir}}/db
access to attrs=userPassword
  by dn.exact="{{.ServiceDN}}" write
  by anonymous auth
  by self write
  by * none
access to attrs=authPassword
  by dn.exact="{{.ServiceDN}}" write
  by * none
access to attrs=objectClass val.exact=authPasswordObject
  by dn.exact="{{.ServiceDN}}" write
  by users read
  by * none
access to attrs=mobile,telephoneNumber,labeledURI,description,jpegPhoto
  by dn.exact="{{.ServiceDN}}" write
  by self write
  by users read
  by * none
access to attrs=title
  by dn.exact="{{.ServiceDN}}" write
  by users read
  by * none
access to dn.subtree="ou=rooms,{{.Suffix}}"
  by dn.exact="{{.ServiceDN}}" write
  by users read
  by * none
access to *
  by dn.exact="{{.ServiceDN}}" read
  by users read
  by * none
`

// WriteConfig writes slapd.conf (and a certificate for 127.0.0.1) into dir
// and returns the config's path. The interop script uses the same layout.
func WriteConfig(dir string) (string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		return "", err
	}
	if err := writeCert(dir); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "authpassword.schema"), []byte(AuthPasswordSchema), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "parley.schema"), []byte(Schema), 0o644); err != nil {
		return "", err
	}
	var b bytes.Buffer
	err := template.Must(template.New("slapd").Parse(confTemplate)).Execute(&b, map[string]string{
		"Dir": dir, "Suffix": Suffix, "RootDN": RootDN, "RootPassword": RootPassword, "ServiceDN": ServiceDN,
	})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "slapd.conf")
	return path, os.WriteFile(path, b.Bytes(), 0o600)
}

func writeCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
}

// Available reports whether slapd and slapadd are installed.
func Available() bool {
	for _, p := range []string{"/usr/sbin/slapd", "/usr/sbin/slapadd", "/usr/lib/ldap/back_mdb.so"} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// missing says what to install when Available is false. slapd carries
// slapd, slapadd and the mdb backend; ldap-utils carries the ldapmodify
// and ldapsearch that Modify and Search run.
const missing = "OpenLDAP slapd is not installed: install the Debian package slapd (apt-get install -y slapd ldap-utils)"

// inCI reports whether the tests run in CI, where .ci/run installs slapd
// first: a missing slapd there is a broken setup, and skipping would hide
// untested code, so the directory tests fail instead.
func inCI() bool { return os.Getenv("CI") != "" }

// Main runs a package's tests; packages whose tests call Start use it from
// TestMain: func TestMain(m *testing.M) { os.Exit(ldaptest.Main(m)) }.
//
// Without slapd the directory tests skip, and go test shows a passing
// package's output, skip messages included, only with -v: a plain
// `go test ./...` would skip them silently. So Main says it once per test
// binary, in one line naming the Debian package. With -v (or -json) the
// line goes to standard output like any test output; otherwise it goes to
// the terminal go test runs in (/dev/tty), the only place a passing
// package's output is not discarded, and to standard output when there is
// no terminal. In CI it says nothing: the tests fail with the same text.
func Main(m *testing.M) int {
	flag.Parse()
	if !Available() && !inCI() {
		notice(fmt.Sprintf("%s: directory tests SKIPPED: %s", filepath.Base(os.Args[0]), missing))
	}
	return m.Run()
}

// notice prints line where a go test user sees it (see Main).
func notice(line string) {
	if !testing.Verbose() {
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			_, err = fmt.Fprintln(tty, line)
			tty.Close()
			if err == nil {
				return
			}
		}
	}
	fmt.Println(line)
}

// Start runs slapd loaded with ldif (Fixture when empty) until the test
// ends. It skips the test when slapd is not installed (fails it in CI).
func Start(t testing.TB, ldif string) *Server {
	t.Helper()
	if !Available() {
		if inCI() {
			t.Fatal("ldaptest: " + missing)
		}
		t.Skip("ldaptest: " + missing + "; skipping")
	}
	if ldif == "" {
		ldif = Fixture
	}
	dir := t.TempDir()
	conf, err := WriteConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	ldifPath := filepath.Join(dir, "fixture.ldif")
	if err := os.WriteFile(ldifPath, []byte(ldif), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/sbin/slapadd", "-f", conf, "-l", ldifPath).CombinedOutput(); err != nil {
		t.Fatalf("ldaptest: slapadd: %v\n%s", err, out)
	}
	s := &Server{Dir: dir, CAFile: filepath.Join(dir, "cert.pem"), done: make(chan struct{})}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s.Addr, s.LDAPSAddr = FreeAddr(t), FreeAddr(t)
		if lastErr = s.run(conf); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("ldaptest: slapd did not start: %v", lastErr)
	return nil
}

func (s *Server) run(conf string) error {
	var out bytes.Buffer
	// -d 0 keeps slapd in the foreground (so the test owns its PID) and
	// quiet; -h lists exactly our loopback listeners.
	s.cmd = exec.Command("/usr/sbin/slapd", "-d", "0", "-f", conf,
		"-h", fmt.Sprintf("ldap://%s/ ldaps://%s/", s.Addr, s.LDAPSAddr))
	s.cmd.Stdout, s.cmd.Stderr = &out, &out
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	// Both listeners must be slapd's own: a port another test binary
	// was handed too may answer from that binary's slapd (listenwait).
	for _, addr := range []string{s.Addr, s.LDAPSAddr} {
		if err := listenwait.Wait(s.cmd.Process.Pid, addr, s.done, 10*time.Second); err != nil {
			s.Stop()
			return fmt.Errorf("%v: %s", err, out.String())
		}
	}
	return nil
}

// Stop kills slapd (idempotent). Tests use it to simulate an outage.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// DirectoryTOML is the [directory] table header and the keys that connect
// a Parley config to s as the service account, with the fixture's people
// and groups and short timeouts; a test appends the keys it is about.
func (s *Server) DirectoryTOML() string {
	return fmt.Sprintf(`[directory]
servers = [%q]
tls = "none"
bind_dn = %q
bind_password = %q
user_base = %q
group_base = %q
dial_timeout = "2s"
retry_delay = "10ms"
`, s.Addr, ServiceDN, ServicePassword, PeopleBase, GroupBase)
}

// Modify applies an LDIF change record as the root DN with ldapmodify.
func (s *Server) Modify(t testing.TB, ldif string) {
	t.Helper()
	cmd := exec.Command("ldapmodify", "-x", "-H", "ldap://"+s.Addr, "-D", RootDN, "-w", RootPassword)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ldapmodify: %v\n%s", err, out)
	}
}

// Search runs ldapsearch as the root DN and returns its LDIF output.
func (s *Server) Search(t testing.TB, base, filter string, attrs ...string) string {
	t.Helper()
	args := append([]string{"-x", "-LLL", "-o", "ldif-wrap=no", "-H", "ldap://" + s.Addr, "-D", RootDN, "-w", RootPassword, "-b", base, filter}, attrs...)
	out, err := exec.Command("ldapsearch", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ldapsearch: %v\n%s", err, out)
	}
	return string(out)
}

// DeadAddr is an address where connections are refused: port 1 (tcpmux)
// on loopback, which nothing on a test machine serves. A port found free
// by FreeAddr could be taken by another test binary while a test relies
// on it staying dead.
const DeadAddr = "127.0.0.1:1"

// FreeAddr returns a 127.0.0.1 address with a port nothing listens on
// (at the time of the call).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
