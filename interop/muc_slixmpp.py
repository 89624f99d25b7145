"""slixmpp (xep_0045) against Parley's MUC service: create and configure a
room, join, chat, history, change the subject, kick (and a participant's
refused kick), destroy. Prints PASS/FAIL lines; used by interop/muc.sh.

usage: muc_slixmpp.py IP PORT DOMAIN PASSWORD
"""
import asyncio
import sys

import slixmpp
from slixmpp.exceptions import IqError

import common

IP, PORT, DOMAIN, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ROOM = slixmpp.JID(f"interop@conference.{DOMAIN}")
report = common.Report("slixmpp muc ")


class Client(common.Client):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/muc", PASSWORD,
                         plugins=("xep_0004", "xep_0030", "xep_0045", "xep_0199"))
        self.inbox = asyncio.Queue()
        self.add_event_handler("groupchat_message", lambda m: self.inbox.put_nowait(("msg", m)))
        self.add_event_handler("groupchat_subject", lambda m: self.inbox.put_nowait(("subject", m)))
        self.add_event_handler("groupchat_presence",
                               lambda p: p["type"] == "unavailable" and self.inbox.put_nowait(("unavailable", p)))

    async def wait_for(self, kind, pred, timeout=10):
        loop = asyncio.get_event_loop()
        end = loop.time() + timeout
        while True:
            left = end - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError()
            k, st = await asyncio.wait_for(self.inbox.get(), left)
            if k == kind and pred(st):
                return st


async def connect(user):
    c = Client(user)
    if not await common.login(c, IP, PORT):
        raise RuntimeError(f"{user} could not log in")
    return c


def step(name, coro):
    return common.step(report, name, coro)


async def main():
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    muc_a, muc_b, muc_c = alice["xep_0045"], bob["xep_0045"], carol["xep_0045"]

    async def service_discovered():
        items = await alice["xep_0030"].get_items(jid=DOMAIN)
        return any(str(i[0]) == f"conference.{DOMAIN}" for i in items["disco_items"]["items"])
    await step("service in the server's disco#items", service_discovered())

    async def create():
        pres, _subject, _occ, _hist = await muc_a.join_muc_wait(ROOM, "alice", timeout=10)
        codes = pres["muc"]["status_codes"]
        return 201 in codes and pres["muc"]["affiliation"] == "owner"
    await step("alice creates the room (201, owner)", create())

    async def configure():
        form = await muc_a.get_room_config(ROOM)
        form.set_values({
            "muc#roomconfig_roomname": "Interop Room",
            "muc#roomconfig_roomdesc": "made by slixmpp",
            "muc#roomconfig_changesubject": False,
        })
        await muc_a.set_room_config(ROOM, form)
        info = await alice["xep_0030"].get_info(jid=ROOM)
        names = [i[-1] for i in info["disco_info"]["identities"]]
        return "Interop Room" in names and "muc_temporary" in info["disco_info"]["features"]
    await step("alice configures the room (muc#owner form)", configure())

    async def bob_joins():
        _pres, _subject, occupants, _hist = await muc_b.join_muc_wait(ROOM, "bob", timeout=10)
        return any(p["from"].resource == "alice" for p in occupants)
    await step("bob joins and sees alice", bob_joins())

    async def chat():
        alice.send_message(mto=ROOM, mbody="hello from alice", mtype="groupchat")
        m = await bob.wait_for("msg", lambda m: m["body"] == "hello from alice")
        bob.send_message(mto=ROOM, mbody="hi alice", mtype="groupchat")
        m2 = await alice.wait_for("msg", lambda m: m["body"] == "hi alice")
        return m["from"].resource == "alice" and m2["from"].resource == "bob"
    await step("alice and bob chat in the room", chat())

    async def subject():
        muc_a.set_subject(ROOM, "Interop subject")
        m = await bob.wait_for("subject", lambda m: m["subject"] == "Interop subject")
        return m["from"].resource == "alice"
    await step("alice changes the subject", subject())

    async def history():
        _pres, subj, _occ, hist = await muc_c.join_muc_wait(ROOM, "carol", maxstanzas=1, timeout=10)
        return len(hist) == 1 and hist[0]["body"] == "hi alice" and subj["subject"] == "Interop subject"
    await step("carol joins with history maxstanzas=1 and gets the subject", history())

    async def refused_kick():
        try:
            await muc_b.set_role(ROOM, "carol", "none", timeout=10)
        except IqError as e:
            return e.iq["error"]["condition"] == "forbidden"
        return False
    await step("participant bob may not kick (forbidden)", refused_kick())

    async def kick():
        await muc_a.set_role(ROOM, "bob", "none", reason="interop kick", timeout=10)
        p = await bob.wait_for("unavailable", lambda p: p["from"] == slixmpp.JID(f"{ROOM}/bob"))
        return 307 in p["muc"]["status_codes"]
    await step("alice kicks bob (307)", kick())

    async def destroy():
        await muc_a.destroy(ROOM, reason="done", altroom=slixmpp.JID(f"elsewhere@conference.{DOMAIN}"), timeout=10)
        p = await carol.wait_for("unavailable", lambda p: p["from"] == slixmpp.JID(f"{ROOM}/carol"))
        return "destroy" in str(p)
    await step("alice destroys the room", destroy())

    for c in (alice, bob, carol):
        c.disconnect()


if __name__ == "__main__":
    sys.exit(common.run_main(main, 90, report))
