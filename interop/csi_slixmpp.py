"""slixmpp (xep_0352, xep_0085) against Parley's XEP-0352 client state
indication: the stream feature, presence updates and chat states held while
the client is inactive and delivered (latest presence per contact) before
the next message, <active/> delivering what was held, IQs passing at once,
and a full hold buffer delivered rather than dropped. Prints PASS/FAIL
lines; used by interop/csi.sh.

usage: csi_slixmpp.py IP PORT DOMAIN PASSWORD QUEUE
"""
import asyncio
import sys

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import common

IP, PORT, DOMAIN, PASSWORD, QUEUE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
report = common.Report("slixmpp csi ")

# How long "nothing arrives" is watched for. Parley delivers to a local
# session within milliseconds, so a second is plenty to see a leak.
QUIET = 1.0


class Client(common.Client):
    """A client that logs every presence and message it receives, in
    arrival order."""

    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/csi", PASSWORD,
                         plugins=("xep_0030", "xep_0085", "xep_0199", "xep_0352"))
        self.log = []
        self.changed = asyncio.Event()
        for kind in ("presence", "message"):
            self.register_handler(Callback(f"csi-interop-{kind}", MatchXPath(f"{{jabber:client}}{kind}"), self._record))

    def _record(self, st):
        self.log.append(st)
        self.changed.set()

    async def until(self, pred, timeout=8):
        """Wait until pred(log) is true; False on timeout."""
        loop = asyncio.get_event_loop()
        end = loop.time() + timeout
        while not pred(self.log):
            left = end - loop.time()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                return False
        return True


def describe(st):
    """presence FROM TYPE (slixmpp reports show as the type) / message
    FROM chat_state thread body"""
    if st.name == "presence":
        return f"presence {st['from']} {st['type']}"
    parts = [f"message {st['from']}"]
    if st["chat_state"]:
        parts.append(st["chat_state"])
    if st["thread"]:
        parts.append("thread=" + st["thread"])
    if st["body"]:
        parts.append("body=" + st["body"])
    return " ".join(parts)


def from_contacts(entries, *clients):
    jids = {str(c.boundjid) for c in clients}
    return [e for e in entries if str(e["from"]) in jids]


async def connect(user):
    c = Client(user)
    if not await common.login(c, IP, PORT):
        raise RuntimeError(f"{user} could not log in")
    return c


def step(name, coro, **kw):
    return common.step(report, name, coro, **kw)


async def main():
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    csi = alice["xep_0352"]

    async def feature():
        return csi.enabled
    await step("stream feature <csi/> offered after authentication", feature())

    async def subscribe():
        # slixmpp's rosters authorize and subscribe back by default.
        for c in (bob, carol):
            alice.send_presence(pto=c.boundjid.bare, ptype="subscribe")
        if not await alice.until(lambda log: all(
                any(e.name == "presence" and e["type"] == "available" and e["from"] == c.boundjid for e in log)
                for c in (bob, carol))):
            return False
        # The handshake goes on both ways (subscribe back, roster pushes:
        # urgent stanzas that would deliver held ones): wait until every
        # roster says 'both', so that nothing of it is still under way.
        loop = asyncio.get_event_loop()
        end = loop.time() + 8

        def settled():
            return all(a.client_roster[b.boundjid.bare]["subscription"] == "both"
                       for a, b in ((alice, bob), (alice, carol), (bob, alice), (carol, alice)))
        while not settled():
            if loop.time() > end:
                return False
            await asyncio.sleep(0.05)
        return True
    await step("alice and bob, alice and carol subscribed both ways", subscribe())

    async def inactive():
        csi.send_inactive()
        # In-order processing (XEP-0352 §5.1): the pong comes after the
        # server handled <inactive/>.
        await alice["xep_0199"].ping(jid=DOMAIN, timeout=8)
        mark = len(alice.log)
        bob.send_presence(pshow="away")
        bob.send_presence(pshow="xa")
        carol.send_presence(pshow="dnd")
        m = bob.make_message(mto=alice.boundjid, mtype="chat")
        m["chat_state"] = "composing"
        m.send()
        await asyncio.sleep(QUIET)
        leaked = from_contacts(alice.log[mark:], bob, carol)
        return mark, leaked
    r = await step("inactive: presence updates and chat states are held", inactive(),
                   ok=lambda r: not r[1], detail=lambda r: "got " + ", ".join(map(describe, r[1])))
    if r is None:
        return
    mark = r[0]

    async def message():
        bob.send_message(mto=alice.boundjid, mbody="wake up", mtype="chat")
        if not await alice.until(lambda log: any(e.name == "message" and e["body"] == "wake up" for e in log[mark:])):
            return "the message did not arrive"
        got = from_contacts(alice.log[mark:], bob, carol)
        names = list(map(describe, got))
        # slixmpp gives a presence's show as its type.
        want = {f"presence {bob.boundjid} xa", f"presence {carol.boundjid} dnd",
                f"message {bob.boundjid} composing"}
        if len(names) != 4 or set(names[:3]) != want or names[3] != f"message {bob.boundjid} body=wake up":
            return "got " + ", ".join(names)
        show = {str(e["from"]): e["show"] for e in got if e.name == "presence"}
        if show != {str(bob.boundjid): "xa", str(carol.boundjid): "dnd"}:
            return f"presence shows {show}"
        if names.index(f"presence {bob.boundjid} xa") > names.index(f"message {bob.boundjid} composing"):
            return "bob's chat state came before his presence: " + ", ".join(names)
        return True
    await step("a message brings the latest presence of each contact and the chat state first",
               message(), ok=lambda r: r is True, detail=str)

    async def active():
        mark = len(alice.log)
        bob.send_presence(pshow="chat")
        await asyncio.sleep(QUIET)
        if from_contacts(alice.log[mark:], bob):
            return "bob's presence arrived while inactive"
        csi.send_active()
        if not await alice.until(lambda log: any(
                e.name == "presence" and e["from"] == bob.boundjid and e["show"] == "chat" for e in log[mark:])):
            return "held presence not delivered after <active/>"
        return True
    await step("<active/> delivers what was held", active(), ok=lambda r: r is True, detail=str)

    async def iq():
        csi.send_inactive()
        await alice["xep_0199"].ping(jid=DOMAIN, timeout=8)
        loop = asyncio.get_event_loop()
        t0 = loop.time()
        await bob["xep_0199"].ping(jid=alice.boundjid, timeout=5)
        return loop.time() - t0
    await step("an IQ to an inactive client is answered at once", iq(),
               ok=lambda r: r is not None and r < 2, detail=lambda r: f"took {r:.1f}s")

    async def full():
        mark = len(alice.log)

        def state(i):
            m = bob.make_message(mto=alice.boundjid, mtype="chat")
            m["chat_state"] = "composing"
            m["thread"] = f"t{i}"
            m.send()
        for i in range(1, QUEUE + 1):
            state(i)
        await asyncio.sleep(QUIET)
        if from_contacts(alice.log[mark:], bob):
            return "chat states arrived before the buffer was full"
        state(QUEUE + 1)
        want = [f"message {bob.boundjid} composing thread=t{i}" for i in range(1, QUEUE + 2)]
        if not await alice.until(lambda log: len(from_contacts(log[mark:], bob)) >= len(want)):
            return "got " + ", ".join(map(describe, from_contacts(alice.log[mark:], bob)))
        got = list(map(describe, from_contacts(alice.log[mark:], bob)))
        return True if got == want else "got " + ", ".join(got)
    await step(f"a full hold buffer ({QUEUE}) is delivered in order, nothing dropped", full(),
               ok=lambda r: r is True, detail=str)

    for c in (alice, bob, carol):
        c.disconnect()


if __name__ == "__main__":
    sys.exit(common.run_main(main, 90, report))
