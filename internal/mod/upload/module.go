// Package upload implements XEP-0363 HTTP File Upload: a service at its own
// domain (upload.<host> by default) that hands an account a slot, a PUT URL
// and a GET URL on the server's public HTTPS listener, and then stores and
// serves the file.
//
// The XMPP side is a router component, like the other services (disco#info
// with identity store/file, the urn:xmpp:http:upload:0 feature and the
// XEP-0128 max-file-size form; slot requests). The HTTP side is a handler
// mounted on the HTTPS front door (internal/httpfront) at
// /upload/<host>/<id>/<filename>.
//
// Slots are stateless and unforgeable: the PUT carries a token in its
// Authorization header (XEP-0363 <header/>), HMAC-signed with a key kept in
// storage, naming the slot id, file name, size, type, uploader and expiry.
// A slot works once, because the store refuses to overwrite; until its
// expiry, because the token says when; and for exactly the announced
// Content-Length and Content-Type. The id is 128 random bits, so GET URLs
// cannot be guessed, and it is the only part of a URL that ever becomes
// part of a file path.
package upload

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"parley/internal/config"
	"parley/internal/module"
	"parley/internal/storage"
)

// Namespaces.
const (
	NS      = "urn:xmpp:http:upload:0"
	nsInfo  = "http://jabber.org/protocol/disco#info"
	nsItems = "http://jabber.org/protocol/disco#items"
	nsData  = "jabber:x:data"
)

// Module is the upload service of one host; it does nothing on a host
// without [host.upload] enabled = true.
type Module struct {
	h      *module.Host
	cfg    config.Upload
	active bool
	// prefix is the path the handler is mounted at: /upload/<host>/.
	prefix string
	// readTimeout and writeTimeout are how long a body may stall either
	// way ([https] read_timeout, write_timeout).
	readTimeout, writeTimeout time.Duration
	now                       func() time.Time

	http    module.HTTP
	store   Store
	idx     *index
	key     []byte
	stopped atomic.Bool

	offDeleted func()
	stop       chan struct{}
	wg         sync.WaitGroup
}

var (
	_ module.Module    = (*Module)(nil)
	_ module.Component = (*Module)(nil)
)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) {
	m := &Module{h: h, now: time.Now}
	if h.HostCfg == nil || h.Config == nil || !h.HostCfg.Upload.Enabled {
		return m, nil
	}
	m.active = true
	m.cfg = h.HostCfg.Upload
	m.prefix = "/upload/" + h.Domain + "/"
	m.readTimeout = h.Config.HTTPS.ReadTimeout.Duration
	m.writeTimeout = h.Config.HTTPS.WriteTimeout.Duration
	m.idx = newIndex(limits{
		quotaBytes: m.cfg.QuotaBytes, quotaFiles: m.cfg.QuotaFiles, maxTotal: m.cfg.MaxTotalBytes,
		slotTimeout: m.cfg.SlotTimeout.Duration, purge: m.cfg.PurgeInterval.Duration,
	})
	return m, nil
}

// Name implements module.Module.
func (*Module) Name() string { return "upload" }

// Start opens the store, counts what it holds, mounts the HTTP handler,
// routes the service domain and starts the purge.
func (m *Module) Start(ctx context.Context) error {
	if !m.active {
		return nil
	}
	front, ok := module.Lookup(m.h, module.HTTPService)
	if !ok {
		return errors.New("upload: the server provides no HTTPS listener")
	}
	m.http = front
	var err error
	if m.key, err = m.hmacKey(ctx); err != nil {
		return fmt.Errorf("upload: key: %w", err)
	}
	if !filepath.IsLocal(m.h.Domain) || filepath.Base(m.h.Domain) != m.h.Domain {
		return fmt.Errorf("upload: host %q cannot name a directory", m.h.Domain)
	}
	disk, err := NewDisk(filepath.Join(m.h.Config.DataDir, "upload", m.h.Domain))
	if err != nil {
		return fmt.Errorf("upload: store: %w", err)
	}
	m.store = disk
	err = m.store.Walk(ctx, func(id string, meta Meta) error {
		m.idx.add(meta.Owner, ref{id: id, size: meta.Size, expires: meta.Expires})
		return nil
	})
	if err != nil {
		return fmt.Errorf("upload: reading the store: %w", err)
	}
	if err := front.Mount(m.prefix, m); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if old := m.h.AddComponent(m.cfg.Domain, m); old != nil {
		m.h.AddComponent(m.cfg.Domain, old)
		return fmt.Errorf("upload: domain %s is already served by another component", m.cfg.Domain)
	}
	m.h.AddItem(module.DiscoItem{JID: m.cfg.Domain, Name: m.cfg.Name})
	m.offDeleted = m.h.Accounts.On(module.EventAccountDeleted, 0, func(ev *module.AccountEvent) bool {
		// An account's files are its data: deleting the account deletes
		// them, and their links stop working.
		m.deleteAll(ev.Ctx, m.idx.removeOwner(ev.JID.String()))
		return false
	})
	m.stop = make(chan struct{})
	m.wg.Add(1)
	go m.purgeLoop()
	m.h.Log.Info("upload: serving", "domain", m.cfg.Domain, "url", m.http.BaseURL(m.h.Domain)+m.prefix)
	return nil
}

// Stop unroutes the domain and stops the purge. The handler stays mounted
// (the listener is already closed when modules stop) and answers 503.
func (m *Module) Stop(context.Context) error {
	if !m.active || m.stop == nil {
		return nil
	}
	m.stopped.Store(true)
	m.h.RemoveComponent(m.cfg.Domain, m)
	if m.offDeleted != nil {
		m.offDeleted()
	}
	close(m.stop)
	m.wg.Wait()
	m.stop = nil
	return nil
}

// hmacKey returns the slot-signing key, created on first use and kept in
// storage: slots stay valid across a restart, and every node of a future
// cluster signs alike.
func (m *Module) hmacKey(ctx context.Context) ([]byte, error) {
	return storage.Secret(ctx, m.h.Store.KV(), "upload", m.h.Domain, "hmac-key", 32)
}

func (m *Module) purgeLoop() {
	defer m.wg.Done()
	m.purge()
	t := time.NewTicker(m.cfg.PurgeInterval.Duration)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.purge()
		}
	}
}

// purge deletes the files that expired.
func (m *Module) purge() {
	ids := m.idx.expired(m.now())
	if len(ids) > 0 {
		m.deleteAll(context.Background(), ids)
		m.h.Log.Debug("upload: purged expired files", "count", len(ids))
	}
}

func (m *Module) deleteAll(ctx context.Context, ids []string) {
	for _, id := range ids {
		if err := m.store.Delete(ctx, id); err != nil {
			m.h.Log.Warn("upload: delete", "id", id, "err", err)
		}
	}
}
