package main

import (
	"reflect"
	"testing"

	"parley/internal/config"
)

func TestRestartNeededNamesChangedSections(t *testing.T) {
	a, err := config.Parse([]byte("[log]\nlevel = \"info\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := config.Parse([]byte("[log]\nlevel = \"debug\"\n[auth]\nmin_password_length = 12\n[limits]\noffline_quota = 9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := restartNeeded(a, a); len(got) != 0 {
		t.Fatalf("unchanged config reported %v", got)
	}
	if got, want := restartNeeded(a, b), []string{"limits", "auth"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v (the log level reloads and must not be listed)", got, want)
	}
}
