#!/usr/bin/env python3
"""XEP-0198 against the built Parley with slixmpp's xep_0198 plugin (run by
interop/sm.sh): alice enables stream management with resumption, her TCP
connection is cut without a closing tag (as a phone losing its network),
bob writes to her meanwhile, and alice reconnects and resumes: she gets
every message once and in order, bob never saw her go offline, and the
resumed session works both ways.

    sm_slixmpp.py IP PORT DOMAIN PASSWORD [-v]"""
import asyncio
import sys

from common import Client, Report, login, run_main, wait

IP, PORT, DOMAIN, PASSWORD = sys.argv[1:5]
report = Report("slixmpp sm ")


class Recorder(Client):
    def __init__(self, jid, password, plugins=()):
        super().__init__(jid, password, plugins=plugins)
        self.bodies = []
        self.unavailable_from = []
        self.events = {}
        self.add_event_handler("message", lambda m: m["body"] and self.bodies.append(m["body"]))
        self.add_event_handler("presence_unavailable", lambda p: self.unavailable_from.append(str(p["from"])))
        for ev in ("sm_enabled", "session_resumed", "sm_failed", "disconnected"):
            self.add_event_handler(ev, self._event(ev))

    def _event(self, name):
        def handler(_):
            self.events.setdefault(name, asyncio.get_event_loop().create_future())
            fut = self.events[name]
            if not fut.done():
                fut.set_result(True)
        return handler

    def when(self, name):
        self.events.setdefault(name, asyncio.get_event_loop().create_future())
        return self.events[name]


async def until(pred, timeout=10):
    for _ in range(int(timeout * 20)):
        if pred():
            return True
        await asyncio.sleep(0.05)
    return False


async def main():
    alice = Recorder(f"alice@{DOMAIN}/phone", PASSWORD, plugins=["xep_0198"])
    bob = Recorder(f"bob@{DOMAIN}/desk", PASSWORD)
    report("alice logs in", await login(alice, IP, PORT))
    report("bob logs in", await login(bob, IP, PORT))
    report("alice enables stream management", await wait(alice.when("sm_enabled"), 10) is True)
    report("the server gave a resumption id", bool(alice["xep_0198"].sm_id))
    await asyncio.sleep(0.5)  # presence exchange settles

    bob.send_message(mto=f"alice@{DOMAIN}/phone", mbody="before the cut", mtype="chat")
    report("alice gets a message", await until(lambda: "before the cut" in alice.bodies))

    alice.transport.abort()  # no </stream:stream>: the network is gone
    report("alice's connection is cut", await wait(alice.when("disconnected"), 10) is True)
    await asyncio.sleep(0.3)
    for i in range(1, 4):
        bob.send_message(mto=f"alice@{DOMAIN}/phone", mbody=f"while away {i}", mtype="chat")
    bob.send_message(mto=f"alice@{DOMAIN}", mbody="to the bare JID", mtype="chat")
    await asyncio.sleep(0.5)

    alice.connect(address=(IP, int(PORT)))
    report("alice resumes the session", await wait(alice.when("session_resumed"), 15) is True)
    want = ["while away 1", "while away 2", "while away 3", "to the bare JID"]
    await until(lambda: all(w in alice.bodies for w in want))
    await asyncio.sleep(0.5)  # any duplicate would arrive by now
    got = [b for b in alice.bodies if b in want]
    report("alice gets what was sent while she was away, once and in order", got == want, f"got {got}")
    report("nothing she had already received comes twice", alice.bodies.count("before the cut") == 1,
           f"bodies {alice.bodies}")
    report("bob never saw alice go offline", not any(j.startswith(f"alice@{DOMAIN}") for j in bob.unavailable_from),
           f"unavailable from {bob.unavailable_from}")

    alice.send_message(mto=f"bob@{DOMAIN}/desk", mbody="back again", mtype="chat")
    report("the resumed session sends", await until(lambda: "back again" in bob.bodies))
    bob.send_message(mto=f"alice@{DOMAIN}/phone", mbody="welcome back", mtype="chat")
    report("the resumed session receives", await until(lambda: "welcome back" in alice.bodies))
    alice.disconnect()
    bob.disconnect()
    await asyncio.sleep(0.3)


sys.exit(run_main(main, 90, report))
