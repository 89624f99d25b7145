package directory

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"parley/internal/directory/ldaptest"
)

// TestWatchPhotos: while a photo watcher is registered, snapshots carry a
// digest of each user's photo (and not the photo); photo watchers hear of
// the first snapshot and of photo changes, not of other changes, and
// group watchers do not hear of photo changes.
func TestWatchPhotos(t *testing.T) {
	srv := ldaptest.Start(t, "")
	d, _ := newDir(t, []string{srv.Addr}, "")
	ctx := context.Background()

	// Without a photo watcher, no photo is read.
	s, err := d.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h := s.Users["alice"].PhotoHash; h != "" {
		t.Fatalf("photo read without a watcher: %q", h)
	}

	var photoCalls, groupCalls int
	var last *Snapshot
	cancelPhotos := d.WatchPhotos(func(_, s *Snapshot) { photoCalls++; last = s })
	defer cancelPhotos()
	cancelGroups := d.Watch(func(_, _ *Snapshot) { groupCalls++ })
	defer cancelGroups()

	refresh := func() {
		t.Helper()
		if _, err := d.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	refresh()
	raw, _ := base64.StdEncoding.DecodeString("/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==")
	sum := sha1.Sum(raw)
	if photoCalls != 1 || last.Users["alice"].PhotoHash != hex.EncodeToString(sum[:]) || last.Users["bob"].PhotoHash != "" {
		t.Fatalf("first snapshot with photos: %d calls, alice %q bob %q", photoCalls, last.Users["alice"].PhotoHash, last.Users["bob"].PhotoHash)
	}
	if raw := last.Users["alice"].RawValues("jpegPhoto"); len(raw) != 0 {
		t.Fatalf("the snapshot keeps the photo itself")
	}

	// An unrelated change: no photo call.
	srv.Modify(t, "dn: uid=alice,"+ldaptest.PeopleBase+"\nchangetype: modify\nreplace: mobile\nmobile: 42\n")
	refresh()
	if photoCalls != 1 {
		t.Fatalf("photo watchers called for a mobile number change")
	}

	// A photo change: photo watchers only.
	groups := groupCalls
	srv.Modify(t, "dn: uid=bob,"+ldaptest.PeopleBase+"\nchangetype: modify\nadd: jpegPhoto\njpegPhoto:: R0lGODlhAQABAAAAACw=\n")
	refresh()
	if photoCalls != 2 || last.Users["bob"].PhotoHash == "" {
		t.Fatalf("bob's new photo: %d calls, hash %q", photoCalls, last.Users["bob"].PhotoHash)
	}
	if groupCalls != groups {
		t.Fatalf("group watchers woken by a photo change")
	}

	// photo_data local: nothing is read even with a watcher.
	d2, _ := newDir(t, []string{srv.Addr}, "[directory.profile.photo_data]\nmode = \"local\"\n")
	cancel2 := d2.WatchPhotos(func(_, _ *Snapshot) {})
	defer cancel2()
	s, err = d2.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Users["alice"].PhotoHash != "" {
		t.Fatalf("photo read with photo_data local")
	}
}
