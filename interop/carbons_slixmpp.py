"""slixmpp (xep_0280, xep_0191) against Parley: message carbons between two
resources of one account (a received copy, a sent copy, a forged carbon
refused) and the blocking command (block with a push to the other
resource, the blocked contact's message refused, the user's message to
it refused with <blocked/>, unblock and delivery again). Prints PASS/FAIL
lines; used by interop/carbons.sh.

usage: carbons_slixmpp.py IP PORT DOMAIN PASSWORD
"""
import asyncio
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError

import common

IP, PORT, DOMAIN, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
report = common.Report("slixmpp ")

NS_CARBONS = "urn:xmpp:carbons:2"
NS_FORWARD = "urn:xmpp:forward:0"
NS_BLOCKING = "urn:xmpp:blocking"
NS_BLOCKED = "urn:xmpp:blocking:errors"


def carbon_inner(msg, kind):
    """The message a carbon of the given kind forwards, or None."""
    w = msg.xml.find("{%s}%s" % (NS_CARBONS, kind))
    if w is None:
        return None
    f = w.find("{%s}forwarded" % NS_FORWARD)
    return None if f is None else f.find("{jabber:client}message")


class Client(common.Client):
    """A client whose events (messages, carbons, errors, blocklist pushes)
    land in one queue, read with wait_for."""

    def __init__(self, user, resource):
        super().__init__(f"{user}@{DOMAIN}/{resource}", PASSWORD,
                         plugins=("xep_0030", "xep_0297", "xep_0280", "xep_0191", "xep_0199"))
        self.inbox = asyncio.Queue()
        self.add_event_handler("message", self._message)
        self.add_event_handler("message_error", lambda m: self.inbox.put_nowait(("error", m)))
        self.add_event_handler("carbon_received", lambda m: self.inbox.put_nowait(("carbon_received", m)))
        self.add_event_handler("carbon_sent", lambda m: self.inbox.put_nowait(("carbon_sent", m)))
        self.add_event_handler("blocked", lambda iq: self.inbox.put_nowait(("blocked", iq)))
        self.add_event_handler("unblocked", lambda iq: self.inbox.put_nowait(("unblocked", iq)))

    def _message(self, m):
        if m.xml.find("{%s}received" % NS_CARBONS) is None and m.xml.find("{%s}sent" % NS_CARBONS) is None:
            self.inbox.put_nowait(("msg", m))

    async def wait_for(self, kind, pred=lambda _: True, timeout=8):
        loop = asyncio.get_event_loop()
        end = loop.time() + timeout
        while True:
            left = end - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError()
            k, st = await asyncio.wait_for(self.inbox.get(), left)
            if k == kind and pred(st):
                return st


async def connect(user, resource):
    c = Client(user, resource)
    if not await common.login(c, IP, PORT):
        raise RuntimeError(f"{user}/{resource} could not log in")
    return c


def step(name, coro):
    return common.step(report, name, coro)


async def main():
    desk, phone = await connect("alice", "desk"), await connect("alice", "phone")
    bob = await connect("bob", "laptop")
    alice_bare = f"alice@{DOMAIN}"

    async def features():
        info = await desk["xep_0030"].get_info(jid=DOMAIN)
        f = info["disco_info"]["features"]
        return NS_CARBONS in f and NS_BLOCKING in f
    await step("server announces carbons:2 and blocking", features())

    async def enable():
        await desk["xep_0280"].enable()
        await phone["xep_0280"].enable()
        return True
    await step("both resources enable carbons", enable())

    async def received():
        bob.send_message(mto=f"{alice_bare}/desk", mbody="hello desk", mtype="chat")
        m = await desk.wait_for("msg", lambda m: m["body"] == "hello desk")
        c = await phone.wait_for("carbon_received")
        inner = carbon_inner(c, "received")
        return (m["from"] == bob.boundjid and c["from"] == slixmpp.JID(alice_bare)
                and inner is not None and inner.findtext("{jabber:client}body") == "hello desk"
                and inner.get("from") == str(bob.boundjid))
    await step("carbons: phone gets a <received/> copy of bob's message to desk", received())

    async def sent():
        desk.send_message(mto=f"bob@{DOMAIN}", mbody="hi bob", mtype="chat")
        m = await bob.wait_for("msg", lambda m: m["body"] == "hi bob")
        c = await phone.wait_for("carbon_sent")
        inner = carbon_inner(c, "sent")
        return (m["from"] == desk.boundjid and inner is not None
                and inner.findtext("{jabber:client}body") == "hi bob"
                and inner.get("to") == f"bob@{DOMAIN}")
    await step("carbons: phone gets a <sent/> copy of desk's message to bob", sent())

    async def forged():
        m = bob.make_message(mto=f"{alice_bare}/phone", mtype="chat")
        m["id"] = "forged-1"
        m.xml.append(ET.fromstring(
            f"<received xmlns='{NS_CARBONS}'><forwarded xmlns='{NS_FORWARD}'>"
            f"<message xmlns='jabber:client' from='mallory@{DOMAIN}/x' to='{alice_bare}/desk' type='chat'>"
            "<body>forged</body></message></forwarded></received>"))
        m.send()
        e = await bob.wait_for("error", lambda e: e["id"] == "forged-1")
        return e["error"]["condition"] == "not-acceptable"
    await step("carbons: a client-made carbon is refused (not-acceptable)", forged())

    async def block():
        before = await phone["xep_0191"].get_blocked()  # phone now gets pushes
        await desk["xep_0191"].block(slixmpp.JID(f"bob@{DOMAIN}"))
        push = await phone.wait_for("blocked")
        listed = await desk["xep_0191"].get_blocked()
        return (len(before["blocklist"]["items"]) == 0
                and slixmpp.JID(f"bob@{DOMAIN}") in push["block"]["items"]
                and slixmpp.JID(f"bob@{DOMAIN}") in listed["blocklist"]["items"])
    await step("blocking: alice blocks bob; the other resource gets the push", block())

    async def blocked_in():
        m = bob.make_message(mto=f"{alice_bare}/desk", mbody="let me in", mtype="chat")
        m["id"] = "blocked-in"
        m.send()
        e = await bob.wait_for("error", lambda e: e["id"] == "blocked-in")
        return e["error"]["condition"] == "service-unavailable"
    await step("blocking: bob's message to alice is refused (service-unavailable)", blocked_in())

    async def blocked_out():
        m = desk.make_message(mto=f"bob@{DOMAIN}", mbody="can you hear me", mtype="chat")
        m["id"] = "blocked-out"
        m.send()
        e = await desk.wait_for("error", lambda e: e["id"] == "blocked-out")
        return (e["error"]["condition"] == "not-acceptable"
                and e.xml.find(".//{%s}blocked" % NS_BLOCKED) is not None)
    await step("blocking: alice's message to bob is refused (not-acceptable, <blocked/>)", blocked_out())

    async def nothing_leaked():
        # Neither the refused messages nor copies of them reached anyone:
        # the next message each side sees is the one sent after unblocking.
        await desk["xep_0191"].unblock(slixmpp.JID(f"bob@{DOMAIN}"))
        await phone.wait_for("unblocked")
        bob.send_message(mto=f"{alice_bare}/desk", mbody="back again", mtype="chat")
        m = await desk.wait_for("msg")
        c = await phone.wait_for("carbon_received")
        desk.send_message(mto=f"bob@{DOMAIN}", mbody="welcome back", mtype="chat")
        b = await bob.wait_for("msg")
        return (m["body"] == "back again" and b["body"] == "welcome back"
                and carbon_inner(c, "received").findtext("{jabber:client}body") == "back again")
    await step("blocking: after unblock messages flow both ways again; nothing refused had leaked", nothing_leaked())

    async def unblock_all():
        await desk["xep_0191"].block([slixmpp.JID(f"bob@{DOMAIN}"), slixmpp.JID("example.net")])
        await desk["xep_0191"].unblock([])
        listed = await phone["xep_0191"].get_blocked()
        return len(listed["blocklist"]["items"]) == 0
    await step("blocking: unblock-all empties the list", unblock_all())

    async def refused_bad_jid():
        iq = desk.make_iq_set()
        iq.append(ET.fromstring(f"<block xmlns='{NS_BLOCKING}'><item jid='bob@@{DOMAIN}'/></block>"))
        try:
            await iq.send()
        except IqError as e:
            return e.iq["error"]["condition"] == "jid-malformed"
        return False
    await step("blocking: a malformed JID is refused (jid-malformed)", refused_bad_jid())

    for c in (desk, phone, bob):
        c.disconnect()


sys.exit(common.run_main(main, 100, report))
