package adhoc_test

import (
	"os"
	"testing"

	"parley/internal/directory/ldaptest"
)

// TestMain says in one line when the directory tests skip for want of slapd.
func TestMain(m *testing.M) { os.Exit(ldaptest.Main(m)) }
