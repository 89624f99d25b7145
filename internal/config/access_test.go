package config

import (
	"strings"
	"testing"
)

func TestAccessValidation(t *testing.T) {
	const host = "[[host]]\ndomain = \"example.test\"\n"
	const dir = "[directory]\nservers = [\"127.0.0.1:1\"]\nuser_base = \"ou=people,dc=x\"\ntls = \"none\"\n"
	for name, tc := range map[string]struct{ text, want string }{
		"full JID":           {host + "[host.access.upload]\nusers = [\"a@example.test/r\"]\n", "not a bare JID"},
		"domain as user":     {host + "[host.access.muc_join]\ndeny_users = [\"example.test\"]\n", "not a bare JID"},
		"empty group":        {host + "[host.access.federation]\ngroups = [\" \"]\n", "empty group name"},
		"unknown service":    {host + "[host.access.chat]\nusers = [\"a@example.test\"]\n", "chat"},
		"shared no group":    {host + "[[host.shared_roster]]\nname = \"X\"\n", "group is required"},
		"shared twice":       {host + "[[host.shared_roster]]\ngroup = \"a\"\n[[host.shared_roster]]\ngroup = \"a\"\n", "listed twice"},
		"shared on dir host": {host + "accounts = \"directory\"\n[[host.shared_roster]]\ngroup = \"a\"\n" + dir, "directory.roster_group"},
		"room_write no base": {host + dir + "room_write = true\n", "room_write: needs room_base"},
		"config_base no dir": {host + "[directory]\nconfig_base = \"ou=c\"\n", "need directory.servers"},
		"bad config filter":  {host + dir + "config_base = \"ou=c\"\nconfig_filter = \"objectClass=x\"\n", "config_filter"},
		"poll too short":     {host + "[auth]\ngroups_poll_interval = \"1ms\"\n", "groups_poll_interval"},
	} {
		_, err := Parse([]byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
	c, err := Parse([]byte(host + "[host.access.upload]\ngroups = [\"staff\"]\n[[host.shared_roster]]\ngroup = \"team\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := c.Hosts[0]
	if h.SharedRoster[0].Name != "team" || c.Auth.GroupsPollInterval.Duration.String() != "5s" {
		t.Errorf("defaults: %+v %v", h.SharedRoster, c.Auth.GroupsPollInterval)
	}
	if g := h.RuleGroups(); strings.Join(g, ",") != "staff,team" {
		t.Errorf("RuleGroups = %v", g)
	}
}
