"""slixmpp against Parley with accounts in an OpenLDAP directory (issue 6):
directory passwords (wrong password and disabled user refused), colleagues
pre-populated in the roster with presence, a vCard from the directory, a
readonly edit refused, an update edit written to the directory (checked with
ldapsearch), a persistent room from the directory, and a group change made
with ldapmodify reaching an online user's roster. Prints PASS/FAIL lines;
used by interop/directory.sh.

usage: directory_slixmpp.py IP PORT DOMAIN LDAP_URI ROOT_DN ROOT_PW
"""
import asyncio
import subprocess
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError

import common

IP, PORT, DOMAIN, LDAP_URI, ROOT_DN, ROOT_PW = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
PEOPLE = "ou=people,dc=example,dc=test"
GROUPS = "ou=groups,dc=example,dc=test"
VC = "{vcard-temp}"
report = common.Report("slixmpp directory ")


class Client(common.Client):
    def __init__(self, user, password):
        super().__init__(f"{user}@{DOMAIN}/dir", password, mech="PLAIN",
                         plugins=("xep_0030", "xep_0045", "xep_0199"))
        self.presences = asyncio.Queue()
        self.pushes = asyncio.Queue()
        self.add_event_handler("presence_available", lambda p: self.presences.put_nowait(p))
        self.add_event_handler("roster_update", lambda iq: self.pushes.put_nowait(iq))

    async def on_start(self):
        await self.get_roster()
        self.send_presence()


async def login(user, password):
    c = Client(user, password)
    if not await common.login(c, IP, PORT):
        c.disconnect()
        return None
    return c


def step(name, coro):
    return common.step(report, name, coro, ok=lambda r: r is not False and r is not None,
                       detail=lambda r: "" if r else f"got {r!r}")


def ldap(cmd, stdin=None, *args):
    return subprocess.run([cmd, "-x", "-H", LDAP_URI, "-D", ROOT_DN, "-w", ROOT_PW, *args],
                          input=stdin, capture_output=True, text=True, timeout=20)


async def vcard_iq(c, typ, vcard_xml=None, to=None):
    iq = c.make_iq_set() if typ == "set" else c.make_iq_get()
    if to:
        iq["to"] = to
    iq.append(ET.fromstring(vcard_xml or "<vCard xmlns='vcard-temp'/>"))
    return await iq.send(timeout=10)


async def main():
    async def refused(user, pw):
        c = await login(user, pw)
        if c:
            c.disconnect()
        return c is None
    await step("wrong password refused", refused("alice", "wrong-pass"))
    await step("disabled user refused", refused("dave", "dave-pass"))

    alice = await step("alice logs in with her directory password", login("alice", "alice-pass"))
    if not alice:
        return
    bob = None
    try:
        async def prepopulated():
            for _ in range(50):
                r = alice.client_roster
                if "bob@" + DOMAIN in r and "carol@" + DOMAIN in r:
                    break
                await asyncio.sleep(0.1)
                await alice.get_roster()
            b = alice.client_roster["bob@" + DOMAIN]
            return b["subscription"] == "both" and "Engineering" in b["groups"] and b["name"] == "Bob Builder"
        await step("colleague pre-populated in the roster (group Engineering, subscription both)", prepopulated())

        async def presence():
            nonlocal bob
            bob = await login("bob", "bob-pass")
            while True:
                p = await asyncio.wait_for(alice.presences.get(), 10)
                if p["from"].bare == "bob@" + DOMAIN:
                    return True
        await step("alice sees bob's presence without subscribing", presence())

        async def vcard_from_directory():
            r = await vcard_iq(alice, "get")
            v = r.xml.find(VC + "vCard")
            return v.findtext(VC + "FN") == "Alice Liddell" and v.findtext(VC + "ORG/" + VC + "ORGNAME") == "Example Corp" \
                and v.find(VC + "PHOTO") is not None
        await step("vCard fields come from the directory (FN, static ORGNAME, PHOTO)", vcard_from_directory())

        async def readonly_refused():
            try:
                await vcard_iq(alice, "set", "<vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard>")
                return False
            except IqError as e:
                return e.condition == "not-allowed"
        await step("readonly field edit refused with not-allowed", readonly_refused())

        async def update_written():
            await vcard_iq(alice, "set", "<vCard xmlns='vcard-temp'><TEL><CELL/><NUMBER>+44 7700 900555</NUMBER></TEL></vCard>")
            out = ldap("ldapsearch", None, "-LLL", "-b", PEOPLE, "(uid=alice)", "mobile").stdout
            return "mobile: +44 7700 900555" in out
        await step("update field edit visible with ldapsearch", update_written())

        async def join_room():
            pres, *_ = await alice["xep_0045"].join_muc_wait(slixmpp.JID("lobby@conference." + DOMAIN), "alice", timeout=10)
            return pres["type"] != "error"
        await step("alice joins the persistent room defined in the directory", join_room())

        async def group_change():
            r = ldap("ldapmodify", f"dn: cn=engineering,{GROUPS}\nchangetype: modify\nadd: member\nmember: uid=erin,{PEOPLE}\n")
            if r.returncode != 0:
                raise RuntimeError("ldapmodify: " + r.stderr)
            while True:
                iq = await asyncio.wait_for(alice.pushes.get(), 15)
                items = iq["roster"]["items"]
                j = slixmpp.JID("erin@" + DOMAIN)
                if j in items and items[j]["subscription"] == "both":
                    return True
        await step("ldapmodify group change reaches alice's roster as a push", group_change())
    finally:
        for c in (alice, bob):
            if c:
                c.disconnect()


if __name__ == "__main__":
    sys.exit(common.run_main(main, 120, report))
