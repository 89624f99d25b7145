package upload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestToken(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s := slot{ID: newID(), Filename: "a b.png", Size: 10, Type: "image/png", Owner: "alice@a.test", Expires: 1e10}
	tok := sign(key, "upload.a.test", s)
	got, err := verify(key, "upload.a.test", tok)
	if err != nil || got != s {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	p, sig, _ := strings.Cut(tok, ".")
	forged := sign(key, "upload.a.test", slot{ID: s.ID, Filename: s.Filename, Size: 1 << 40, Type: s.Type, Owner: s.Owner, Expires: s.Expires})
	fp, _, _ := strings.Cut(forged, ".")
	flip := []byte(sig)
	flip[3] ^= 1
	for name, bad := range map[string]string{
		"other key":       sign(bytes.Repeat([]byte{8}, 32), "upload.a.test", s),
		"other domain":    sign(key, "upload.b.test", s),
		"changed payload": fp + "." + sig,
		"changed mac":     p + "." + string(flip),
		"no mac":          p,
		"empty":           "",
		"huge":            strings.Repeat("A", maxTokenLen+1) + "." + sig,
		"garbage payload": "!!!." + sig,
	} {
		if _, err := verify(key, "upload.a.test", bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if !(slot{Expires: time.Now().Unix()}).expired(time.Now()) || (slot{Expires: time.Now().Add(time.Minute).Unix()}).expired(time.Now()) {
		t.Error("expiry")
	}
	// A slot is valid for at least its timeout, whatever the fraction of
	// the second it was made in (a truncated expiry left a "1s" slot made
	// at .98 valid for 20 ms).
	for _, frac := range []time.Duration{0, time.Millisecond, 980 * time.Millisecond, time.Second - 1} {
		made := time.Unix(1_800_000_000, 0).Add(frac)
		s := slot{Expires: expiresAt(made, time.Second)}
		if s.expired(made.Add(time.Second - 1)) {
			t.Errorf("made at +%v: expired before its second was over", frac)
		}
		if !s.expired(made.Add(2 * time.Second)) {
			t.Errorf("made at +%v: still valid two seconds later", frac)
		}
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if !validID(id) || seen[id] {
			t.Fatalf("id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "..", strings.Repeat("a", 21), strings.Repeat("a", 23), strings.Repeat(".", 22), "aaaaaaaaaaaaaaaaaaaa/a", "aaaaaaaaaaaaaaaaaaaa%2", "aaaaaaaaaaaaaaaaaaa\x00a"} {
		if validID(bad) {
			t.Errorf("validID(%q)", bad)
		}
	}
}

func TestCleanFilename(t *testing.T) {
	for in, want := range map[string]string{
		"photo.jpg":              "photo.jpg",
		"C:\\Users\\a\\cat.png":  "cat.png",
		"/etc/passwd":            "passwd",
		"../../x.txt":            "x.txt",
		" spaced name.txt ":      "spaced name.txt",
		"photo\u202egnp.exe":     "photognp.exe",
		"a\x00b\nc.txt":          "abc.txt",
		"Ünïcödé 名前.pdf":         "Ünïcödé 名前.pdf",
		"100% sure;really?.txt":  "100% sure;really?.txt",
		strings.Repeat("n", 255): strings.Repeat("n", 255),
	} {
		if got, ok := cleanFilename(in); !ok || got != want {
			t.Errorf("cleanFilename(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", " ", ".", "..", "dir/", "a/..", "\xff\xfe", strings.Repeat("n", 256)} {
		if got, ok := cleanFilename(bad); ok {
			t.Errorf("cleanFilename(%q) = %q, want refusal", bad, got)
		}
	}
}

func TestContentTypes(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "application/octet-stream",
		"image/PNG":                 "image/png",
		"text/plain; charset=UTF-8": "text/plain; charset=UTF-8",
	} {
		if got, ok := cleanContentType(in); !ok || got != want {
			t.Errorf("cleanContentType(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"text", "/plain", "text/", "a/b/c", "text/plain; x", "<script>", strings.Repeat("a", 250) + "/aaaaaaa"} {
		if got, ok := cleanContentType(bad); ok {
			t.Errorf("cleanContentType(%q) = %q, want refusal", bad, got)
		}
	}
	if !sameType("Image/Png", "image/png") || !sameType("", "application/octet-stream") || sameType("", "image/png") || sameType("image/jpeg", "image/png") {
		t.Error("sameType")
	}
	for ct, in := range map[string]bool{
		"image/png": true, "video/mp4": true, "text/plain; charset=utf-8": true,
		"text/html": false, "image/svg+xml": false, "application/javascript": false, "text/javascript": false,
		"application/xhtml+xml": false, "application/pdf": false, "application/octet-stream": false, "nonsense": false,
	} {
		if inline(ct) != in {
			t.Errorf("inline(%q) = %v", ct, !in)
		}
	}
}

func TestQuotaIndex(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	x := newIndex(limits{quotaBytes: 100, quotaFiles: 3, maxTotal: 250, slotTimeout: time.Minute, purge: time.Hour})
	x.add("a", ref{id: "1", size: 40, expires: now.Add(time.Hour)})
	x.add("a", ref{id: "2", size: 40, expires: now.Add(2 * time.Hour)})
	if rf := x.check("a", 20, now); rf != nil {
		t.Fatalf("20 more fit: %+v", rf)
	}
	// 30 more needs the first file gone: retry after its expiry.
	rf := x.check("a", 30, now)
	if rf == nil || rf.full || !rf.retry.Equal(now.Add(time.Hour+time.Second)) {
		t.Fatalf("over bytes: %+v", rf)
	}
	// 100 needs both gone.
	if rf := x.check("a", 100, now); rf == nil || !rf.retry.Equal(now.Add(2*time.Hour+time.Second)) {
		t.Fatalf("the whole quota: %+v", rf)
	}
	// Expired files do not count.
	if rf := x.check("a", 60, now.Add(time.Hour)); rf != nil {
		t.Fatalf("after the first expired: %+v", rf)
	}
	// Reservations count, and one slot is uploaded once at a time.
	if rf, ok := x.reserve("a", "3", 20, now); rf != nil || !ok {
		t.Fatalf("reserve: %+v %v", rf, ok)
	}
	if _, ok := x.reserve("b", "3", 1, now); ok {
		t.Fatal("the same slot reserved twice")
	}
	// Three files (two stored, one reserved): a fourth is refused and only
	// the uploads in progress can free it in time.
	if rf := x.check("a", 1, now); rf == nil || !strings.Contains(rf.text, "3 files") {
		t.Fatalf("files quota: %+v", rf)
	}
	x.commit("a", ref{id: "3", size: 20, expires: now.Add(3 * time.Hour)})
	if b, n := x.usageOf("a"); b != 100 || n != 3 {
		t.Fatalf("usage %d %d", b, n)
	}
	// The service total (250) counts every owner.
	x.add("b", ref{id: "4", size: 100, expires: now.Add(time.Hour)})
	if rf := x.check("c", 60, now); rf == nil || !rf.full {
		t.Fatalf("total: %+v", rf)
	}
	// A cancelled upload gives its reservation back, and an owner with
	// nothing stored is forgotten.
	if rf, ok := x.reserve("c", "5", 10, now); rf != nil || !ok {
		t.Fatalf("reserve c: %+v", rf)
	}
	x.cancel("c", "5", 10)
	if ids := x.expired(now.Add(90 * time.Minute)); len(ids) != 2 {
		t.Fatalf("expired %v", ids)
	}
	if ids := x.removeOwner("a"); len(ids) != 2 {
		t.Fatalf("removeOwner %v", ids)
	}
	if x.total != 0 || len(x.owners) != 0 {
		t.Fatalf("after everything: total %d owners %v", x.total, x.owners)
	}
}

func TestDiskStore(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := newID()
	meta := Meta{Filename: "x.txt", ContentType: "text/plain", Size: 5, Owner: "a@b", Created: time.Now().UTC(), Expires: time.Now().Add(time.Hour).UTC()}
	if err := d.Put(ctx, id, meta, strings.NewReader("hel")); !errors.Is(err, ErrSize) {
		t.Fatalf("short body: %v", err)
	}
	if err := d.Put(ctx, id, meta, strings.NewReader("hello!")); !errors.Is(err, ErrSize) {
		t.Fatalf("long body: %v", err)
	}
	if _, _, err := d.Open(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed put is visible: %v", err)
	}
	if err := d.Put(ctx, id, meta, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, id, meta, strings.NewReader("HELLO")); !errors.Is(err, ErrExists) {
		t.Fatalf("overwrite: %v", err)
	}
	m, rc, err := d.Open(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello" || m.Filename != "x.txt" || m.Owner != "a@b" {
		t.Fatalf("read %q %+v", b, m)
	}
	// Concurrent puts of one new id: exactly one wins.
	id2 := newID()
	var wg sync.WaitGroup
	results := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- d.Put(ctx, id2, meta, strings.NewReader("hello"))
		}()
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrExists):
			t.Errorf("racing put: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d racing puts won", won)
	}
	// Ids that are not ids never become paths.
	for _, bad := range []string{"../../etc/passwd", "..", "", "aa/../../../../tmp/x"} {
		if err := d.Put(ctx, bad, meta, strings.NewReader("hello")); err == nil {
			t.Errorf("put %q accepted", bad)
		}
	}
	// A damaged file is skipped by Walk and not served.
	id3 := newID()
	if err := os.MkdirAll(filepath.Join(dir, id3[:2]), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, id3[:2], id3), []byte("PUP1garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Open(ctx, id3); err == nil {
		t.Error("damaged file opened")
	}
	var walked []string
	if err := d.Walk(ctx, func(id string, _ Meta) error { walked = append(walked, id); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 2 {
		t.Fatalf("walked %v", walked)
	}
	if err := d.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Open(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// A new store removes what a crash left in .tmp.
	if err := os.WriteFile(filepath.Join(dir, ".tmp", "put-left"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDisk(dir); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, ".tmp")); len(left) != 0 {
		t.Fatalf(".tmp after restart: %v", left)
	}
}
