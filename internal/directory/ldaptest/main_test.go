package ldaptest

import (
	"os"
	"testing"
)

// TestMain says in one line when the directory tests skip for want of slapd.
func TestMain(m *testing.M) { os.Exit(Main(m)) }
