package config

import "time"

// Console configures the web console on the HTTPS listener ([console],
// internal/console): the administration pages at /admin/ and the
// self-service pages at /account/. Both are off by default: they put a
// login form on the Internet-facing listener, which the operator decides.
type Console struct {
	// Admin serves the administration console at /admin/ (default false).
	Admin bool `toml:"admin"`
	// Account serves the self-service page at /account/ (default false).
	Account bool `toml:"account"`
	// IdleTimeout ends a console session unused this long (default 30m).
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxAge ends a console session this long after its login, however
	// busy (default 8h).
	MaxAge Duration `toml:"max_age"`
	// MaxSessions bounds the console sessions held at once; when full, the
	// one unused longest is ended (default 10000).
	MaxSessions int `toml:"max_sessions"`
	// MaxSessionsPerAccount bounds one account's console sessions; a
	// further login ends that account's oldest (default 5). Without it,
	// any account could fill the table and so log every administrator out.
	MaxSessionsPerAccount int `toml:"max_sessions_per_account"`
	// LogLines is how many recent log lines the server keeps in memory for
	// the console's log page (default 1000).
	LogLines int `toml:"log_lines"`
	// PageSize is the users listed per page (default 50).
	PageSize int `toml:"page_size"`
	// MaxArchiveExport bounds the messages one archive download holds
	// (default 100000).
	MaxArchiveExport int `toml:"max_archive_export"`
}

// PasswordPolicy is what a new password chosen on the self-service page
// must satisfy besides auth.min_password_length.
type PasswordPolicy struct {
	// RequireClasses is how many of the four character classes (lower
	// case, upper case, digits, others) a password needs (0-4, default 0).
	RequireClasses int `toml:"require_classes"`
	// History is how many previous passwords of an account are remembered
	// (hashed) and may not be chosen again (0-50, default 0: no rule).
	History int `toml:"history"`
	// MaxLength bounds a password's length in bytes (default 1024): PBKDF2
	// over a megabyte is work an attacker should not get for free.
	MaxLength int `toml:"max_length"`
}

func (c *Config) applyConsoleDefaults() {
	k := &c.Console
	setDur(&k.IdleTimeout, 30*time.Minute)
	setDur(&k.MaxAge, 8*time.Hour)
	setInt(&k.MaxSessions, 10000)
	setInt(&k.MaxSessionsPerAccount, 5)
	setInt(&k.LogLines, 1000)
	setInt(&k.PageSize, 50)
	setInt(&k.MaxArchiveExport, 100000)
	setInt(&c.Auth.Password.MaxLength, 1024)
}

func (c *Config) validateConsole(bad func(string, ...any)) {
	k := c.Console
	if k.IdleTimeout.Duration < time.Minute || k.MaxAge.Duration < k.IdleTimeout.Duration {
		bad("console: need idle_timeout >= 1m and max_age >= idle_timeout")
	}
	if k.MaxSessionsPerAccount < 1 {
		bad("console.max_sessions_per_account: %d is not positive", k.MaxSessionsPerAccount)
	}
	if k.MaxSessions < 1 || k.LogLines < 1 || k.LogLines > 100000 || k.PageSize < 1 || k.PageSize > 1000 || k.MaxArchiveExport < 1 {
		bad("console: need max_sessions >= 1, 1 <= log_lines <= 100000, 1 <= page_size <= 1000, max_archive_export >= 1")
	}
	if (k.Admin || k.Account) && (c.HTTPS.Listen == nil || *c.HTTPS.Listen == "") && c.HTTPS.PlainListen == "" {
		bad("console: the console is served on the [https] listener, which is off")
	}
	p := c.Auth.Password
	if p.RequireClasses < 0 || p.RequireClasses > 4 {
		bad("auth.password.require_classes: %d is not between 0 and 4", p.RequireClasses)
	}
	if p.History < 0 || p.History > 50 {
		bad("auth.password.history: %d is not between 0 and 50", p.History)
	}
	if p.MaxLength < c.Auth.MinPasswordLength {
		bad("auth.password.max_length: %d is below min_password_length", p.MaxLength)
	}
}
