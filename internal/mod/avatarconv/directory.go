package avatarconv

import (
	"context"
	"strings"
	"sync"
	"time"

	"parley/internal/config"
	"parley/internal/directory"
	"parley/internal/pubsub"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// dirAvatars makes the avatar of a directory host's users follow the
// XEP-0154 profile mode of photo_data (seed 001 "Profiles and Directory"):
//
//   - readonly (the default: jpegPhoto) and static: the directory's (or
//     the configuration's) photo is the user's XEP-0084 avatar, published
//     by the server and republished when the directory changes; users
//     cannot publish, retract or reconfigure the avatar nodes (forbidden),
//     as they cannot change the vCard PHOTO (the vcard module's
//     not-allowed);
//   - update: the directory's photo is published the same way, but users
//     may publish their own, which the conversion writes to the directory
//     through the vCard (fromPEP);
//   - local: nothing here, the photo is Parley's like on other hosts.
//
// The directory poller (directory.WatchPhotos) says when photos changed:
// each enumeration reads the photo attribute and keeps a digest per user.
// One goroutine publishes, so the poller never waits for storage.
type dirAvatars struct {
	c      *Conv
	dir    *directory.Directory
	field  directory.ProfileField
	static string // SHA-1 of a static photo, "" without one
	locked bool   // users may not change the avatar nodes

	kick    chan struct{}
	mu      sync.Mutex
	pending *directory.Snapshot // the latest snapshot not yet applied
	synced  *directory.Snapshot // the last one applied
	// failed are the users whose avatar could not be brought in line
	// with synced (storage or directory errors); they are tried again
	// after a poll interval, and with every later snapshot. Only the
	// worker touches synced and failed.
	failed map[string]bool
	cancel func()
	stop   context.CancelFunc
	done   chan struct{}
}

// startDirectory sets the directory avatars up on a directory host whose
// photo_data is not local.
func (c *Conv) startDirectory() {
	d, ok := c.h.AccountSource.(*directory.Directory)
	if !ok {
		return
	}
	f := d.PhotoField()
	if f.Mode == config.ProfileLocal {
		return
	}
	da := &dirAvatars{c: c, dir: d, field: f, kick: make(chan struct{}, 1), done: make(chan struct{}),
		locked: f.Mode == config.ProfileReadonly || f.Mode == config.ProfileStatic}
	if f.Mode == config.ProfileStatic {
		if data, ok := decode64(f.Value); ok {
			da.static = hashOf(data)
		}
	}
	if da.locked {
		c.pep.AddGuard(da.guard)
	}
	ctx, stop := context.WithCancel(context.Background())
	da.stop = stop
	go da.run(ctx)
	da.cancel = d.WatchPhotos(da.changed)
	c.dirAvatars = da
}

// stopDirectory stops following the directory and waits for the worker.
func (c *Conv) stopDirectory() {
	da := c.dirAvatars
	if da == nil {
		return
	}
	da.cancel()
	da.stop()
	<-da.done
	c.dirAvatars = nil
}

// guard refuses clients' changes to the avatar nodes while the directory
// owns the photo. XEP-0060 answers a publisher without the right to
// publish with forbidden (§7.1.3.1); the same goes for retracting,
// creating, configuring, purging and deleting those nodes. Subscribing
// and reading stay open as for any node.
func (da *dirAvatars) guard(_ context.Context, _, _ jid.JID, op, node string) *pubsub.Error {
	if node != NSData && node != NSMetadata {
		return nil
	}
	switch op {
	case "subscribe", "unsubscribe", "options", "subscriptions":
		return nil
	}
	return &pubsub.Error{Condition: stanza.Forbidden,
		Text: "the avatar is the directory's photo (profile field photo_data is " + da.field.Mode + ")"}
}

// changed is the directory's photo watcher: it hands the snapshot to the
// worker, which may still be busy with an earlier one (only the latest
// matters: it is compared with the last one applied).
func (da *dirAvatars) changed(_, s *directory.Snapshot) {
	da.mu.Lock()
	da.pending = s
	da.mu.Unlock()
	select {
	case da.kick <- struct{}{}:
	default:
	}
}

func (da *dirAvatars) run(ctx context.Context) {
	defer close(da.done)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-da.kick:
		case <-retry.C:
			da.mu.Lock()
			if da.pending == nil {
				da.pending = da.synced
			}
			da.mu.Unlock()
		}
		da.mu.Lock()
		s := da.pending
		da.pending = nil
		da.mu.Unlock()
		if s != nil {
			da.apply(ctx, s)
		}
		if len(da.failed) > 0 {
			retry.Reset(da.dir.Config().PollInterval.Duration)
		}
	}
}

// want is the hash of the photo the directory gives username, "" for none.
func (da *dirAvatars) want(s *directory.Snapshot, username string) (string, bool) {
	u := s.Users[username]
	if u == nil {
		return "", false
	}
	if da.field.Mode == config.ProfileStatic {
		return da.static, true
	}
	return u.PhotoHash, true
}

// apply brings the avatars of the users whose photo changed since the
// last snapshot applied (all users the first time) in line with s.
func (da *dirAvatars) apply(ctx context.Context, s *directory.Snapshot) {
	failed := map[string]bool{}
	for name := range s.Users {
		if ctx.Err() != nil {
			return
		}
		want, _ := da.want(s, name)
		if da.synced != nil && !da.failed[name] {
			if had, ok := da.want(da.synced, name); ok && had == want {
				continue
			}
		}
		owner, err := jid.New(name, da.c.h.Domain, "")
		if err != nil {
			continue
		}
		if !da.sync(ctx, owner, want) {
			failed[name] = true
		}
	}
	da.synced, da.failed = s, failed
}

// sync makes owner's avatar the directory's photo (want its hash, "" for
// none): nothing when the metadata already announces it, else the photo
// (read through the vCard, as contacts read it) is published, or without
// a photo the avatar is disabled with an empty metadata item (XEP-0084
// §4.5). It reports false when an error (logged) left it undone.
func (da *dirAvatars) sync(ctx context.Context, owner jid.JID, want string) bool {
	c := da.c
	defer c.lock(owner)()
	svc := c.pep.PubSub()
	cur, has := "", false
	last, err := svc.LastItem(ctx, owner.String(), NSMetadata)
	if err != nil {
		c.h.Log.Warn("avatarconv: directory avatar: reading the metadata", "owner", owner.String(), "err", err)
		return false
	}
	if last != nil && last.Payload != nil {
		if info, _ := localInfo(last.Payload); info != nil {
			cur, has = strings.ToLower(info.Attr("id")), true
		}
	}
	if want == "" {
		if has {
			md := xml.New(NSMetadata, "metadata")
			cctx := context.WithValue(ctx, converting{}, true)
			if _, err := svc.Publish(cctx, owner.String(), owner, NSMetadata, pubsub.Item{ID: "none", Payload: md}, nil); err != nil {
				c.h.Log.Info("avatarconv: directory avatar: disabling", "owner", owner.String(), "err", err)
				return false
			}
		}
		c.setHash(owner, "", false)
		return true
	}
	if cur == want {
		return true
	}
	card, err := c.vcard.Get(ctx, owner)
	if err != nil {
		c.h.Log.Warn("avatarconv: directory avatar: reading the vCard", "owner", owner.String(), "err", err)
		return false
	}
	data, typ, ok := vcardPhoto(card)
	if !ok {
		return true // gone since the poll: the next poll disables it
	}
	if hashOf(data) == cur {
		return true
	}
	// Forget the old hash first: from the moment the new metadata is
	// published, a presence must not go out with the old one (it is
	// looked up again until the line below records the new one).
	c.setHash(owner, "", false)
	if !c.publish(ctx, owner, data, typ) {
		return false
	}
	c.setHash(owner, hashOf(data), true)
	c.h.Log.Debug("avatarconv: published the directory photo as the avatar", "owner", owner.String(), "id", hashOf(data))
	return true
}
