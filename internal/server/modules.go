package server

import (
	"parley/internal/mod/adhoc"
	"parley/internal/mod/avatarconv"
	"parley/internal/mod/blocking"
	"parley/internal/mod/bookmarks"
	"parley/internal/mod/caps"
	"parley/internal/mod/carbons"
	"parley/internal/mod/clientproxy"
	"parley/internal/mod/csi"
	"parley/internal/mod/dirroster"
	"parley/internal/mod/disco"
	"parley/internal/mod/entitytime"
	"parley/internal/mod/extdisco"
	"parley/internal/mod/fedaccess"
	"parley/internal/mod/last"
	"parley/internal/mod/mam"
	"parley/internal/mod/muc"
	"parley/internal/mod/offline"
	"parley/internal/mod/pep"
	"parley/internal/mod/ping"
	"parley/internal/mod/presence"
	"parley/internal/mod/private"
	"parley/internal/mod/proxy65"
	"parley/internal/mod/push"
	"parley/internal/mod/register"
	"parley/internal/mod/roster"
	"parley/internal/mod/upload"
	"parley/internal/mod/vcard"
	"parley/internal/mod/version"
	"parley/internal/module"
)

// DefaultModules is the module set every host runs, in start order. It is an
// explicit list on purpose: what runs is visible in one place, and there is
// no init-time registration.
func DefaultModules() []module.Factory {
	return []module.Factory{
		roster.New,
		presence.New,
		offline.New,
		carbons.New,
		blocking.New,
		fedaccess.New, // [host.access.federation]
		mam.New,       // offers room archives to muc, which looks them up at Start
		disco.New,
		vcard.New,
		private.New,
		caps.New,
		pep.New,        // after caps, which it looks up
		bookmarks.New,  // after private and pep, which it connects
		avatarconv.New, // after vcard and pep, which it connects
		version.New,
		entitytime.New,
		ping.New,
		last.New,
		csi.New,
		proxy65.New,
		clientproxy.New,
		register.New,
		muc.New,
		upload.New,
		dirroster.New, // after roster, whose Store it uses
		adhoc.New,
		push.New,
		extdisco.New,
	}
}
