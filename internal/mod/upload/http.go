package upload

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"parley/internal/httpfront"
)

// ServeHTTP serves /upload/<host>/<id>/<filename>: PUT stores a slot's
// file, GET and HEAD serve it, OPTIONS answers CORS preflights (browser
// clients upload from another origin, with an Authorization header).
func (m *Module) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if m.stopped.Load() {
		http.Error(w, "the upload service is stopping", http.StatusServiceUnavailable)
		return
	}
	id, name, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, m.prefix), "/")
	if !ok || !validID(id) || name == "" || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		m.serveFile(w, r, id, name)
	case http.MethodPut:
		m.receive(w, r, id, name)
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
	default:
		h.Set("Allow", "GET, HEAD, PUT, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// receive stores the body of a PUT to a slot URL. Every check that needs
// no body comes first, so a refused upload costs no bytes (a client that
// sent Expect: 100-continue never sends them).
func (m *Module) receive(w http.ResponseWriter, r *http.Request, id, name string) {
	if !httpfront.Secure(r) {
		http.Error(w, "uploads need https", http.StatusForbidden)
		return
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
		http.Error(w, "the slot's Authorization header is required", http.StatusUnauthorized)
		return
	}
	s, err := verify(m.key, m.cfg.Domain, strings.TrimSpace(tok))
	switch {
	case err != nil:
		http.Error(w, "invalid upload token", http.StatusForbidden)
		return
	case s.ID != id || s.Filename != name:
		http.Error(w, "the token is for another URL", http.StatusForbidden)
		return
	case s.expired(m.now()):
		http.Error(w, "the slot expired: request a new one", http.StatusForbidden)
		return
	}
	// XEP-0363 §6: the upload MUST match the slot's size, and SHOULD
	// match its type.
	switch {
	case r.ContentLength < 0:
		http.Error(w, "Content-Length is required", http.StatusLengthRequired)
		return
	case r.ContentLength != s.Size:
		http.Error(w, fmt.Sprintf("Content-Length %d is not the slot's size %d", r.ContentLength, s.Size), http.StatusBadRequest)
		return
	case !sameType(r.Header.Get("Content-Type"), s.Type):
		http.Error(w, fmt.Sprintf("Content-Type is not the slot's %s", s.Type), http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	owner := s.Owner
	local, _, _ := strings.Cut(owner, "@")
	if exists, err := m.h.AccountExists(ctx, local); err != nil {
		http.Error(w, "cannot check the account now", http.StatusServiceUnavailable)
		return
	} else if !exists {
		http.Error(w, "the account that requested the slot no longer exists", http.StatusForbidden)
		return
	}
	if _, rc, err := m.store.Open(ctx, id); err == nil {
		_ = rc.Close()
		http.Error(w, "the slot was used already", http.StatusConflict)
		return
	}
	now := m.now()
	rf, free := m.idx.reserve(owner, id, s.Size, now)
	switch {
	case !free:
		http.Error(w, "the slot is being uploaded", http.StatusConflict)
		return
	case rf != nil:
		if !rf.retry.IsZero() {
			w.Header().Set("Retry-After", strconv.FormatInt(int64(time.Until(rf.retry).Seconds())+1, 10))
		}
		status := http.StatusRequestEntityTooLarge
		if rf.full {
			status = http.StatusInsufficientStorage
		}
		http.Error(w, rf.text, status)
		return
	}
	meta := Meta{Filename: name, ContentType: s.Type, Size: s.Size, Owner: owner,
		Created: now.UTC(), Expires: now.Add(m.cfg.ExpireAfter.Duration).UTC()}
	rc := http.NewResponseController(w)
	err = m.store.Put(ctx, id, meta, &stallReader{r: r.Body, rc: rc, read: m.readTimeout, write: m.writeTimeout})
	if err != nil {
		m.idx.cancel(owner, id, s.Size)
		switch {
		case errors.Is(err, ErrExists):
			http.Error(w, "the slot was used already", http.StatusConflict)
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Header().Set("Connection", "close")
			http.Error(w, "the body stalled", http.StatusRequestTimeout)
		case errors.Is(err, ErrSize), errors.Is(err, io.ErrUnexpectedEOF):
			http.Error(w, "the body is shorter than Content-Length", http.StatusBadRequest)
		default:
			m.h.Log.Warn("upload: store", "id", id, "owner", owner, "err", err)
			http.Error(w, "the file could not be stored", http.StatusInternalServerError)
		}
		return
	}
	m.idx.commit(owner, ref{id: id, size: s.Size, expires: meta.Expires})
	m.h.Log.Info("upload: stored", "owner", owner, "id", id, "size", s.Size, "type", s.Type)
	w.WriteHeader(http.StatusCreated)
}

// sameType reports whether a PUT's Content-Type is the slot's: the same
// media type and parameters, whatever their spelling; no header matches a
// slot of application/octet-stream, which is what a slot without a type
// gets.
func sameType(got, want string) bool {
	if strings.TrimSpace(got) == "" {
		return want == "application/octet-stream"
	}
	c, ok := cleanContentType(got)
	return ok && c == want
}

// stallReader bounds how long a body may make no progress: each read gets
// read_timeout of its own, so a large upload on a slow link goes on as
// long as bytes arrive, and a stalled one (slowloris) ends after
// read_timeout. Memory stays one copy buffer whatever the size.
//
// The write deadline moves along too: the listener's ran from the start
// of the request, HTTP/2 resets a stream whose write deadline passes even
// while nothing is being written, and the answer to a long upload still
// has to go out.
type stallReader struct {
	r           io.Reader
	rc          *http.ResponseController
	read, write time.Duration
}

func (s *stallReader) Read(p []byte) (int, error) {
	now := time.Now()
	_ = s.rc.SetReadDeadline(now.Add(s.read))
	_ = s.rc.SetWriteDeadline(now.Add(s.read + s.write))
	return s.r.Read(p)
}

// serveFile answers GET and HEAD with the file and the headers that keep a
// browser from running it: an uploader chooses the Content-Type, so only
// types a browser displays passively are shown inline; everything else
// (HTML, SVG, scripts, ...) is a download, under a sandboxing CSP.
func (m *Module) serveFile(w http.ResponseWriter, r *http.Request, id, name string) {
	meta, content, err := m.store.Open(r.Context(), id)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			m.h.Log.Warn("upload: open", "id", id, "err", err)
		}
		http.NotFound(w, r)
		return
	}
	defer content.Close()
	now := m.now()
	if meta.Filename != name || !now.Before(meta.Expires) {
		// Expired but not purged yet is gone all the same.
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", meta.ContentType)
	h.Set("Content-Disposition", disposition(meta))
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; sandbox")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d, immutable", int(meta.Expires.Sub(now).Seconds())))
	h.Set("ETag", `"`+id+`"`)
	rc := http.NewResponseController(w)
	// A GET has no body to wait for: the request's read deadline would
	// only cancel its context half-way through a long download. The
	// transfer is bounded by the write deadlines instead.
	_ = rc.SetReadDeadline(time.Time{})
	http.ServeContent(&stallWriter{ResponseWriter: w, rc: rc, d: m.writeTimeout}, r, "", meta.Created, content)
}

// stallWriter is stallReader's counterpart for downloads: each write gets
// write_timeout of its own.
type stallWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (s *stallWriter) Write(p []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.d))
	return s.ResponseWriter.Write(p)
}

// inline lists the types shown in the browser rather than downloaded:
// images, audio and video that browsers only display, and plain text
// (which nosniff keeps plain).
func inline(ctype string) bool {
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		return false
	}
	switch mt {
	case "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp", "text/plain":
		return true
	}
	return strings.HasPrefix(mt, "audio/") || strings.HasPrefix(mt, "video/")
}

func disposition(meta Meta) string {
	kind := "attachment"
	if inline(meta.ContentType) {
		kind = "inline"
	}
	if d := mime.FormatMediaType(kind, map[string]string{"filename": meta.Filename}); d != "" {
		return d
	}
	return kind
}
