// Package certs manages the server's TLS certificates: one per virtual host
// selected by SNI, a default, and a self-signed certificate generated on
// first start when the administrator configured none (so that the zero-config
// server speaks TLS at once). Reload re-reads every file, so SIGHUP picks up
// renewed certificates without dropping connections.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/idna"

	"parley/internal/config"
	"parley/internal/xmpp/jid"
)

// Manager hands out certificates for TLS handshakes.
type Manager struct {
	cfg *config.Config

	mu      sync.RWMutex
	byName  map[string]*tls.Certificate
	fallbak *tls.Certificate
}

// New loads (or generates) every certificate the config names. It fails
// before anything listens if a configured file is missing or invalid.
func New(cfg *config.Config) (*Manager, error) {
	m := &Manager{cfg: cfg}
	if err := m.Reload(); err != nil {
		return nil, err
	}
	return m, nil
}

// Reload re-reads all certificates; on error the old set stays in use.
func (m *Manager) Reload() error {
	byName := make(map[string]*tls.Certificate)
	var def *tls.Certificate
	var err error
	if m.cfg.TLS.CertFile != "" {
		def, err = load(m.cfg.TLS.CertFile, m.cfg.TLS.KeyFile)
		if err != nil {
			return err
		}
	}
	var generatedFor []string
	for _, h := range m.cfg.Hosts {
		if h.CertFile == "" {
			if def == nil {
				generatedFor = append(generatedFor, h.Domain)
			}
			continue
		}
		c, err := load(h.CertFile, h.KeyFile)
		if err != nil {
			return err
		}
		byName[h.Domain] = c
	}
	if def == nil && len(generatedFor) > 0 {
		def, err = selfSigned(m.cfg.DataDir, generatedFor)
		if err != nil {
			return err
		}
	}
	if def == nil {
		for _, c := range byName {
			def = c
			break
		}
	}
	m.mu.Lock()
	m.byName, m.fallbak = byName, def
	m.mu.Unlock()
	return nil
}

func load(certFile, keyFile string) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", certFile, err)
	}
	if len(c.Certificate) > 0 {
		c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	return &c, nil
}

// ForName returns the certificate for a domain (the default if it has none).
func (m *Manager) ForName(name string) *tls.Certificate {
	m.mu.RLock()
	defer m.mu.RUnlock()
	// Hosts are named in prepared form (U-labels); a client's SNI carries
	// A-labels (RFC 6066 §3).
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if d, err := jid.PrepareDomain(name); err == nil {
		name = d
	}
	if c := m.byName[name]; c != nil {
		return c
	}
	// A subdomain (conference.example.com) may be served by its parent's cert
	// when that cert has a wildcard; Go's verifier on the client decides.
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c := m.byName[name[i+1:]]; c != nil {
			return c
		}
	}
	return m.fallbak
}

// ServerConfig returns a tls.Config for accepting connections. minVersion
// is "1.2" or "1.3"; alpn lists the ALPN protocols to accept (XEP-0368).
func (m *Manager) ServerConfig(alpn ...string) *tls.Config {
	minV := uint16(tls.VersionTLS12)
	if m.cfg.TLS.MinVersion == "1.3" {
		minV = tls.VersionTLS13
	}
	return &tls.Config{
		MinVersion: minV,
		NextProtos: alpn,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			c := m.ForName(hello.ServerName)
			if c == nil {
				return nil, errors.New("no certificate")
			}
			return c, nil
		},
	}
}

// selfSigned loads or creates data_dir/selfsigned.{crt,key} covering names.
// The certificate is regenerated when the host list changed.
func selfSigned(dataDir string, names []string) (*tls.Certificate, error) {
	certFile := filepath.Join(dataDir, "selfsigned.crt")
	keyFile := filepath.Join(dataDir, "selfsigned.key")
	if c, err := load(certFile, keyFile); err == nil && c.Leaf != nil && covers(c.Leaf, names) && time.Now().Before(c.Leaf.NotAfter) {
		return c, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := GenerateSelfSigned(names, 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return nil, err
	}
	return load(certFile, keyFile)
}

func covers(c *x509.Certificate, names []string) bool {
	for _, n := range names {
		if c.VerifyHostname(asciiName(n)) != nil {
			return false
		}
	}
	return true
}

// GenerateSelfSigned makes a P-256 certificate for names (plus wildcards for
// their subdomains: conference., proxy.) valid for d, in PEM.
func GenerateSelfSigned(names []string, d time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	var dns []string
	for _, n := range names {
		n = asciiName(n)
		dns = append(dns, n, "*."+n)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: asciiName(names[0]), Organization: []string{"Parley self-signed"}},
		DNSNames:              dns,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(d),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// asciiName is a domain in the form certificates carry it: A-labels
// (RFC 6125 §6.4.2; a U-label cannot be a DNS name in a certificate). A
// name idna refuses is returned as is.
func asciiName(name string) string {
	if a, err := idna.Lookup.ToASCII(name); err == nil {
		return a
	}
	return name
}
