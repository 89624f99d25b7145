package sasl

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"hash"
)

// Channel binding type names (IANA channel-binding types registry), as used
// in the SCRAM gs2 header ("p=tls-exporter") and in the XEP-0440
// <channel-binding type='...'/> stream feature.
const (
	CBTLSExporter       = "tls-exporter"
	CBTLSServerEndPoint = "tls-server-end-point"
)

// exporterLabel and exporterLength are fixed by RFC 9266 §2: the label,
// an empty (absent) context and 32 bytes.
const (
	exporterLabel  = "EXPORTER-Channel-Binding"
	exporterLength = 32
)

// ChannelBindingTypes lists the channel binding types usable on a
// connection, preferred first, for the XEP-0440 <sasl-channel-binding/>
// feature; the -PLUS mechanisms are offered exactly when it is non-empty.
//
//   - tls-exporter (RFC 9266) when keying material can be exported: always
//     on TLS 1.3, and on TLS 1.2 only with the extended master secret
//     (RFC 7627), since without it the exporter is not unique to the
//     connection. crypto/tls enforces that by refusing to export, so this
//     relies on the process not running with GODEBUG=tlsunsafeekm=1.
//   - tls-server-end-point (RFC 5929 §4) when serverCert, the leaf this
//     server presented, is known and its hash is defined (see
//     endPointHash). XEP-0440 makes it mandatory for servers because it is
//     the type the most clients can compute.
//
// tls-unique is never offered: it is undefined for TLS 1.3 and broken by
// the triple-handshake attack on TLS 1.2 without extended master secret.
func ChannelBindingTypes(tlsState *tls.ConnectionState, serverCert *x509.Certificate) []string {
	if !encrypted(tlsState) {
		return nil
	}
	var out []string
	if _, ok := exportBinding(tlsState); ok {
		out = append(out, CBTLSExporter)
	}
	if serverCert != nil && endPointHash(serverCert) != nil {
		out = append(out, CBTLSServerEndPoint)
	}
	return out
}

// channelBindingData computes the binding data the server expects for
// cbType, or ok=false when that type is unavailable on this connection.
func channelBindingData(cbType string, tlsState *tls.ConnectionState, serverCert *x509.Certificate) (data []byte, ok bool) {
	if !encrypted(tlsState) {
		return nil, false
	}
	switch cbType {
	case CBTLSExporter:
		return exportBinding(tlsState)
	case CBTLSServerEndPoint:
		if serverCert == nil {
			return nil, false
		}
		newHash := endPointHash(serverCert)
		if newHash == nil {
			return nil, false
		}
		h := newHash()
		h.Write(serverCert.Raw)
		return h.Sum(nil), true
	}
	return nil, false
}

// exportBinding returns the tls-exporter binding data. A ConnectionState
// that crypto/tls did not produce (a literal in a test, a zero value) has no
// exporter and ExportKeyingMaterial would panic on it; that is reported as
// "not available" instead of taking the connection down.
func exportBinding(st *tls.ConnectionState) (data []byte, ok bool) {
	defer func() {
		if recover() != nil {
			data, ok = nil, false
		}
	}()
	d, err := st.ExportKeyingMaterial(exporterLabel, nil, exporterLength)
	if err != nil {
		return nil, false
	}
	return d, true
}

// endPointHash picks the hash for tls-server-end-point per RFC 5929 §4.1:
// the hash of the certificate's signature algorithm, except that MD5 and
// SHA-1 are upgraded to SHA-256. Algorithms without exactly one such hash
// (Ed25519, unknown ones) leave the binding undefined, so nil is returned.
func endPointHash(cert *x509.Certificate) func() hash.Hash {
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.ECDSAWithSHA256, x509.DSAWithSHA256:
		return sha256.New
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		return sha512.New384
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		return sha512.New
	}
	return nil
}
