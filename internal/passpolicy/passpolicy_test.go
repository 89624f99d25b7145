package passpolicy

import (
	"context"
	"path/filepath"
	"testing"

	"parley/internal/config"
	"parley/internal/storage"
	"parley/internal/storage/sqlite"
)

func cfg(t *testing.T, extra string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte("[auth]\nmin_password_length = 8\n" + extra))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckLengthAndClasses(t *testing.T) {
	c := cfg(t, "[auth.password]\nrequire_classes = 3\nmax_length = 20\n")
	for pw, ok := range map[string]bool{
		"short1A":                   false, // 7
		"alllowercase":              false, // 1 class
		"lowerUPPER":                false, // 2 classes
		"lowerUPPER1":               true,
		"lower-1234":                true,
		"ÄÖÜäöü12":                  true,  // unicode letters count
		"Aa1aaaaaaaaaaaaaaaaaaaaaa": false, // over max_length
	} {
		if err := Check(c, pw); (err == nil) != ok {
			t.Errorf("Check(%q) = %v, want ok=%v", pw, err, ok)
		}
	}
}

func TestHashMatches(t *testing.T) {
	h, err := Hash("correct horse", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !Matches(h, "correct horse") || Matches(h, "correct horsf") {
		t.Fatal("hash does not tell the password apart")
	}
	h2, _ := Hash("correct horse", 1000)
	if string(h) == string(h2) {
		t.Fatal("same hash twice: no salt")
	}
	if Matches(h[:10], "correct horse") || Matches(nil, "") {
		t.Fatal("malformed hash matched")
	}
}

func TestHistoryRefusesRecentOnly(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Accounts().Create(ctx, storage.Account{Host: "h", Username: "u"}); err != nil {
		t.Fatal(err)
	}
	h := History{Store: st.Passwords(), Keep: 2, Iterations: 1000}
	for _, pw := range []string{"first-pw1", "second-pw2", "third-pw3"} {
		if err := h.Remember(ctx, "h", "u", pw); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.CheckReuse(ctx, "h", "u", "third-pw3"); err != ErrReused {
		t.Fatalf("newest reused: %v", err)
	}
	if err := h.CheckReuse(ctx, "h", "u", "second-pw2"); err != ErrReused {
		t.Fatalf("second reused: %v", err)
	}
	if err := h.CheckReuse(ctx, "h", "u", "first-pw1"); err != nil {
		t.Fatalf("a password beyond the history is refused: %v", err)
	}
	off := History{Store: st.Passwords(), Keep: 0}
	if err := off.CheckReuse(ctx, "h", "u", "third-pw3"); err != nil {
		t.Fatalf("history 0 refuses: %v", err)
	}
}
