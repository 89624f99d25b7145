package tlsfrag

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"parley/internal/certs"
)

// testConfigs returns a server config with a fresh self-signed
// certificate and a client config that trusts it. The client keeps Go's
// default key shares, post-quantum X25519MLKEM768 first: the large
// ClientHello this package exists for.
func testConfigs(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	certPEM, keyPEM, err := certs.GenerateSelfSigned([]string{"frag.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	server = &tls.Config{Certificates: []tls.Certificate{cert}}
	client = &tls.Config{ServerName: "frag.test", RootCAs: pool}
	return server, client
}

// recorder keeps every chunk a Read returned and every Write.
type recorder struct {
	net.Conn
	mu     sync.Mutex
	reads  [][]byte
	writes bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if n > 0 {
		r.mu.Lock()
		r.reads = append(r.reads, bytes.Clone(p[:n]))
		r.mu.Unlock()
	}
	return n, err
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.writes.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

// record splits b into its first TLS record's header and payload.
func record(t *testing.T, b []byte) (hdr, payload []byte) {
	t.Helper()
	if len(b) < headerLen {
		t.Fatalf("short record: %d bytes", len(b))
	}
	n := int(binary.BigEndian.Uint16(b[3:]))
	if len(b) < headerLen+n {
		t.Fatalf("record of %d bytes cut short at %d", n, len(b)-headerLen)
	}
	return b[:headerLen], b[headerLen : headerLen+n]
}

func TestHandshakeThroughCut(t *testing.T) {
	serverCfg, clientCfg := testConfigs(t)
	cs, ss := net.Pipe()
	sent := &recorder{Conn: cs}
	seen := &recorder{Conn: Server(ss)}
	srv := tls.Server(seen, serverCfg)
	cli := tls.Client(sent, clientCfg)
	done := make(chan error, 1)
	go func() {
		if err := srv.Handshake(); err != nil {
			done <- err
			return
		}
		buf := make([]byte, 64)
		n, err := srv.Read(buf)
		if err == nil {
			_, err = srv.Write(buf[:n])
		}
		done <- err
	}()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Write([]byte("<presence/>")); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, 64)
	n, err := cli.Read(echo)
	if err != nil || string(echo[:n]) != "<presence/>" {
		t.Fatalf("echo %q, %v", echo[:n], err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := srv.ConnectionState(); st.CurveID != tls.X25519MLKEM768 {
		t.Fatalf("negotiated %v, want the post-quantum share the ClientHello carried", st.CurveID)
	}

	// The client's first record, the ClientHello, was handed to crypto/tls
	// as whole records of at most MaxFragment bytes, one per Read, whose
	// payloads add up to the client's.
	hdr, hello := record(t, sent.writes.Bytes())
	if len(hello) <= 2*MaxFragment {
		t.Fatalf("ClientHello of %d bytes: too small to need cutting", len(hello))
	}
	var joined []byte
	reads := 0
	for len(joined) < len(hello) {
		if reads == len(seen.reads) {
			t.Fatalf("ClientHello not complete after %d reads", reads)
		}
		r := seen.reads[reads]
		reads++
		h, p := record(t, r)
		if len(r) != headerLen+len(p) {
			t.Fatalf("read %d holds %d bytes beyond its record", reads, len(r)-headerLen-len(p))
		}
		if len(p) > MaxFragment || !bytes.Equal(h[:3], hdr[:3]) {
			t.Fatalf("read %d: header % x, %d bytes", reads, h, len(p))
		}
		joined = append(joined, p...)
	}
	if !bytes.Equal(joined, hello) {
		t.Fatal("the re-cut payloads are not the ClientHello the client sent")
	}
	if want := (len(hello) + MaxFragment - 1) / MaxFragment; reads != want {
		t.Fatalf("%d re-cut records, want %d", reads, want)
	}
}

// readAll reads r to its end in reads of the given sizes, in turn.
func readAll(r io.Reader, sizes ...int) ([]byte, error) {
	var out []byte
	for i := 0; ; i++ {
		p := make([]byte, sizes[i%len(sizes)])
		n, err := r.Read(p)
		out = append(out, p[:n]...)
		if err != nil {
			return out, err
		}
	}
}

// pipeOf is a connection that reads b and then io.EOF.
func pipeOf(b []byte) net.Conn {
	a, z := net.Pipe()
	go func() {
		_, _ = a.Write(b)
		_ = a.Close()
	}()
	return z
}

func TestOtherInputPassesThrough(t *testing.T) {
	tooLong := []byte{typeHandshake, 3, 1, 0x40, 0x01} // 16385 bytes: not a legal record
	for name, in := range map[string][]byte{
		"XMPP in plaintext": []byte("<?xml version='1.0'?><stream:stream to='example.org'>"),
		"alert":             {21, 3, 3, 0, 2, 2, 40},
		"SSL 2 hello":       {0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15},
		"empty handshake":   {typeHandshake, 3, 1, 0, 0, 'x', 'y'},
		"oversized length":  append(tooLong, bytes.Repeat([]byte{1}, 100)...),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := readAll(Server(pipeOf(in)), 3, 4096)
			if !errors.Is(err, io.EOF) || !bytes.Equal(out, in) {
				t.Fatalf("got %q, %v; want the input unchanged", out, err)
			}
		})
	}
}

func TestTruncatedRecordIsAnError(t *testing.T) {
	in := []byte{typeHandshake, 3, 1, 0x03, 0xe8, 1, 2, 3} // 1000 bytes promised, 3 sent
	out, err := readAll(Server(pipeOf(in)), 4096)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(out) != 0 {
		t.Fatalf("got %d bytes, %v; want io.ErrUnexpectedEOF", len(out), err)
	}
}

// recut is what Conn should hand out for in: a legal first handshake record
// cut into records of MaxFragment bytes, then the rest as it came.
func recut(in []byte) (out []byte, whole bool) {
	if len(in) < headerLen {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(in[3:]))
	if in[0] != typeHandshake || in[1] != 3 || n == 0 || n > maxPlaintextLen {
		return in, true
	}
	if len(in) < headerLen+n {
		return nil, false
	}
	for p := in[headerLen : headerLen+n]; len(p) > 0; {
		k := min(len(p), MaxFragment)
		out = append(out, in[0], in[1], in[2], byte(k>>8), byte(k))
		out = append(out, p[:k]...)
		p = p[k:]
	}
	return append(out, in[headerLen+n:]...), true
}

// FuzzConn checks the cut against the rule on any input and any read
// sizes: a whole legal first record re-cut and the rest untouched, other
// input untouched, an incomplete first record an error.
func FuzzConn(f *testing.F) {
	f.Add([]byte{typeHandshake, 3, 1, 0x04, 0x01}, uint16(4096))
	f.Add([]byte("<?xml version='1.0'?>"), uint16(1))
	f.Add(append([]byte{typeHandshake, 3, 3, 0x02, 0x01}, bytes.Repeat([]byte{7}, 600)...), uint16(5))
	f.Fuzz(func(t *testing.T, in []byte, size uint16) {
		want, whole := recut(in)
		got, err := readAll(Server(pipeOf(in)), int(size%1024)+1)
		if !whole {
			if len(got) != 0 || (!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF)) {
				t.Fatalf("incomplete first record: got %d bytes, %v", len(got), err)
			}
			return
		}
		if !errors.Is(err, io.EOF) || !bytes.Equal(got, want) {
			t.Fatalf("got % x, %v; want % x", got, err, want)
		}
	})
}

// BenchmarkRetainedAfterHandshake reports the heap a server-side crypto/tls
// connection keeps after a handshake with a post-quantum ClientHello, with
// and without the first record cut: the buffer crypto/tls keeps is sized by
// the largest record it read.
func BenchmarkRetainedAfterHandshake(b *testing.B) {
	serverCfg, clientCfg := testConfigs(b)
	for _, cut := range []bool{false, true} {
		name := "whole"
		if cut {
			name = "cut"
		}
		b.Run(name, func(b *testing.B) {
			keep := make([]*tls.Conn, 0, b.N)
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			before := ms.HeapAlloc
			for range b.N {
				cs, ss := net.Pipe()
				var under net.Conn = ss
				if cut {
					under = Server(ss)
				}
				srv := tls.Server(under, serverCfg)
				cli := tls.Client(cs, clientCfg)
				errc := make(chan error, 1)
				go func() { errc <- cli.Handshake() }()
				if err := srv.Handshake(); err != nil {
					b.Fatal(err)
				}
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
				keep = append(keep, srv)
				_ = cs.Close() // not cli.Close: its alert would wait for a reader
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc-before)/float64(b.N), "retained-B/conn")
			runtime.KeepAlive(keep)
		})
	}
}
