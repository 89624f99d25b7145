package upload

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Meta describes a stored file.
type Meta struct {
	Filename    string    `json:"filename"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	Owner       string    `json:"owner"` // bare JID of the uploader (quota)
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires"`
}

// Errors of a Store.
var (
	ErrNotFound = errors.New("upload: no such file")
	ErrExists   = errors.New("upload: the slot was used already")
	ErrSize     = errors.New("upload: the body is not the announced size")
)

// Store keeps the uploaded files. The module only ever names a file by its
// slot id, which it has checked to be 22 base64url characters, so no part
// of a path comes from the client. Disk is the implementation today; an
// S3-compatible object store can implement the same four methods (a Put
// that refuses to overwrite, metadata stored with the object).
// Implementations are safe for concurrent use.
type Store interface {
	// Put stores exactly meta.Size bytes read from body under id. Nothing
	// is visible under id until Put returns nil. It fails with ErrExists
	// when id is stored already (a slot is used once), with ErrSize when
	// body ends early or holds more, and with body's read error (a
	// timeout, a client gone) otherwise.
	Put(ctx context.Context, id string, meta Meta, body io.Reader) error
	// Open returns a stored file's metadata and content, or ErrNotFound.
	Open(ctx context.Context, id string) (Meta, io.ReadSeekCloser, error)
	// Delete removes a file; a missing one is no error.
	Delete(ctx context.Context, id string) error
	// Walk calls fn for every stored file (at start, to count quotas).
	Walk(ctx context.Context, fn func(id string, meta Meta) error) error
}

// Disk stores each file as one file under its root:
// <root>/<first two characters of the id>/<id>, holding a small header
// (magic, metadata length, metadata as JSON) and then the body. One file
// per upload makes publishing atomic: the body is written to <root>/.tmp,
// synced and then linked into place, so a reader or a crash never sees half
// a file with its metadata, or metadata without its file.
type Disk struct {
	root, tmp string
}

const (
	diskMagic   = "PUP1"
	maxMetaSize = 64 << 10
	copyBuffer  = 32 << 10
)

// NewDisk opens (creating it, mode 0700) a store under root. Temporary
// files left by a crash during an upload are removed: nothing is uploading
// before the module starts.
func NewDisk(root string) (*Disk, error) {
	d := &Disk{root: root, tmp: filepath.Join(root, ".tmp")}
	if err := os.RemoveAll(d.tmp); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.tmp, 0o700); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Disk) path(id string) (string, error) {
	if !validID(id) {
		// The module checks ids before it calls the store; this is the
		// second line, so that no caller can make a path of anything else.
		return "", ErrNotFound
	}
	return filepath.Join(d.root, id[:2], id), nil
}

// Put implements Store.
func (d *Disk) Put(_ context.Context, id string, meta Meta, body io.Reader) (err error) {
	final, err := d.path(id)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(final); err == nil {
		return ErrExists
	}
	hdr, err := encodeHeader(meta)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(d.tmp, "put-*")
	if err != nil {
		return err
	}
	defer func() {
		_ = f.Close()
		// After a successful link the final name holds the data; the
		// temporary name goes either way.
		_ = os.Remove(f.Name())
	}()
	if _, err := f.Write(hdr); err != nil {
		return err
	}
	buf := make([]byte, copyBuffer)
	n, err := io.CopyBuffer(f, io.LimitReader(body, meta.Size), buf)
	if err != nil {
		return err
	}
	if n != meta.Size {
		return ErrSize
	}
	if extra, _ := body.Read(buf[:1]); extra > 0 {
		return ErrSize
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return err
	}
	return publish(f.Name(), final)
}

// publish makes tmp visible as final unless final exists. A hard link
// refuses to replace an existing name, so two uploads racing for one slot
// cannot both win; on a file system without hard links the check and the
// rename are separate steps (the module serialises uploads of one slot).
func publish(tmp, final string) error {
	err := os.Link(tmp, final)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return ErrExists
	}
	if _, serr := os.Lstat(final); serr == nil {
		return ErrExists
	}
	return os.Rename(tmp, final)
}

// Open implements Store.
func (d *Disk) Open(_ context.Context, id string) (Meta, io.ReadSeekCloser, error) {
	p, err := d.path(id)
	if err != nil {
		return Meta{}, nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Meta{}, nil, ErrNotFound
	}
	if err != nil {
		return Meta{}, nil, err
	}
	meta, off, err := readHeader(f)
	if err == nil {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil && fi.Size() != off+meta.Size {
			err = fmt.Errorf("upload: %s: %d bytes on disk, header says %d", id, fi.Size(), off+meta.Size)
		}
	}
	if err != nil {
		_ = f.Close()
		return Meta{}, nil, err
	}
	return meta, &section{SectionReader: io.NewSectionReader(f, off, meta.Size), f: f}, nil
}

type section struct {
	*io.SectionReader
	f *os.File
}

func (s *section) Close() error { return s.f.Close() }

// Delete implements Store.
func (d *Disk) Delete(_ context.Context, id string) error {
	p, err := d.path(id)
	if err != nil {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Walk implements Store. Files it cannot read are skipped: one damaged
// file must not keep the service from starting (a GET of it answers 404).
func (d *Disk) Walk(ctx context.Context, fn func(id string, meta Meta) error) error {
	dirs, err := os.ReadDir(d.root)
	if err != nil {
		return err
	}
	for _, dir := range dirs {
		if !dir.IsDir() || len(dir.Name()) != 2 || !validIDChars(dir.Name()) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(d.root, dir.Name()))
		if err != nil {
			return err
		}
		for _, e := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			id := e.Name()
			if !e.Type().IsRegular() || !validID(id) || id[:2] != dir.Name() {
				continue
			}
			meta, rc, err := d.Open(ctx, id)
			if err != nil {
				continue
			}
			_ = rc.Close()
			if err := fn(id, meta); err != nil {
				return err
			}
		}
	}
	return nil
}

func encodeHeader(m Meta) ([]byte, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(js) > maxMetaSize {
		return nil, errors.New("upload: metadata too large")
	}
	var b bytes.Buffer
	b.WriteString(diskMagic)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(js)))
	b.Write(js)
	return b.Bytes(), nil
}

// readHeader returns the metadata and the offset of the body.
func readHeader(r io.Reader) (Meta, int64, error) {
	var fixed [8]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return Meta{}, 0, err
	}
	if string(fixed[:4]) != diskMagic {
		return Meta{}, 0, errors.New("upload: not a stored upload")
	}
	n := binary.BigEndian.Uint32(fixed[4:])
	if n > maxMetaSize {
		return Meta{}, 0, errors.New("upload: metadata too large")
	}
	js := make([]byte, n)
	if _, err := io.ReadFull(r, js); err != nil {
		return Meta{}, 0, err
	}
	var m Meta
	if err := json.Unmarshal(js, &m); err != nil {
		return Meta{}, 0, err
	}
	if m.Size < 0 {
		return Meta{}, 0, errors.New("upload: negative size")
	}
	return m, int64(len(fixed)) + int64(n), nil
}
