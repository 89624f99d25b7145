"""slixmpp (xep_0313, xep_0059, xep_0359) against Parley's message archive:
archive disco, both sides of a conversation archived, stanza-ids on
delivered messages matching archive ids, paging forwards and backwards with
counts, a time filter, metadata; then a room: stanza-ids by the room,
paging through the room's archive as an outsider. Prints PASS/FAIL lines;
used by interop/mam.sh.

usage: mam_slixmpp.py IP PORT DOMAIN PASSWORD
"""
import asyncio
import sys

import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Collector
from slixmpp.xmlstream.matcher import MatchXPath

import common

IP, PORT, DOMAIN, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
MAM = "urn:xmpp:mam:2"
ROOM = slixmpp.JID(f"archive@conference.{DOMAIN}")
report = common.Report("slixmpp mam ")


class Client(common.Client):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/mam", PASSWORD,
                         plugins=("xep_0004", "xep_0030", "xep_0045", "xep_0059", "xep_0297",
                                  "xep_0313", "xep_0359"))
        self.inbox = asyncio.Queue()
        # "message" fires for groupchat messages too (slixmpp also fires
        # "groupchat_message" for them: listening to both doubles them).
        self.add_event_handler("message", lambda m: self.inbox.put_nowait(m))

    async def expect(self, pred, timeout=10):
        loop = asyncio.get_event_loop()
        end = loop.time() + timeout
        while True:
            left = end - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError()
            m = await asyncio.wait_for(self.inbox.get(), left)
            if pred(m):
                return m


async def connect(user):
    c = Client(user)
    if not await common.login(c, IP, PORT):
        raise RuntimeError(f"{user} could not log in")
    return c


def step(name, coro):
    return common.step(report, name, coro)


def bodies(msgs):
    return [m["mam_result"]["forwarded"]["stanza"]["body"] for m in msgs]


def stamp(m):
    """The delay stamp of a result as the server wrote it (XEP-0082)."""
    return m["mam_result"]["forwarded"]["delay"].xml.get("stamp")


async def page(client, jid, max_, before=None):
    """One page of jid's archive: (result messages, the <fin/> reply).
    slixmpp's retrieve() cannot send an empty <before/> (the last page),
    so the query is built here; before="" asks for the last page."""
    iq = client.make_iq_set(ito=jid)
    iq["mam"]["queryid"] = iq["id"]
    iq["mam"]["rsm"]["max"] = str(max_)
    if before is not None:
        iq["mam"]["rsm"]["before"] = before or True
    collector = Collector("page-" + iq["id"], MatchXPath("{jabber:client}message/{%s}result" % MAM))
    client.register_handler(collector)
    try:
        fin = await iq.send(timeout=10)
    finally:
        got = collector.stop()
    return [m for m in got if m["mam_result"]["queryid"] == iq["id"]], fin


async def main():
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    alice_bare, bob_bare = slixmpp.JID(f"alice@{DOMAIN}"), slixmpp.JID(f"bob@{DOMAIN}")

    async def disco():
        info = await alice["xep_0030"].get_info(jid=alice_bare)
        feats = info["disco_info"]["features"]
        return MAM in feats and MAM + "#extended" in feats
    await step("account announces urn:xmpp:mam:2 and #extended", disco())

    delivered = {}

    async def converse():
        for i in range(25):
            alice.send_message(mto=bob_bare, mbody=str(i), mtype="chat")
        for _ in range(25):
            m = await bob.expect(lambda m: m["type"] == "chat" and m["from"].bare == alice_bare.bare)
            if m["stanza_id"]["by"] != bob_bare.bare or not m["stanza_id"]["id"]:
                return False
            delivered[m["body"]] = m["stanza_id"]["id"]
        return len(delivered) == 25
    await step("25 messages delivered with a stanza-id by the recipient's archive", converse())

    async def alice_iterates():
        got = [m async for m in alice["xep_0313"].iterate(with_jid=bob_bare, rsm={"max": 10})]
        return bodies(got) == [str(i) for i in range(25)]
    await step("sender pages forward through her archive (3 pages of 10)", alice_iterates())

    async def bob_last_pages():
        last, fin = await page(bob, None, 10, before="")
        first, count = fin["mam_fin"]["rsm"]["first_index"], fin["mam_fin"]["rsm"]["count"]
        ok = bodies(last) == [str(i) for i in range(15, 25)] and first == "15" and count == "25"
        prev, fin2 = await page(bob, None, 10, before=fin["mam_fin"]["rsm"]["first"])
        ok = ok and bodies(prev) == [str(i) for i in range(5, 15)] and fin2["mam_fin"]["rsm"]["first_index"] == "5"
        ids_match = all(m["mam_result"]["id"] == delivered[b] for m, b in zip(last + prev, bodies(last + prev)))
        return ok and ids_match
    await step("recipient pages backward; archive ids equal the delivered stanza-ids", bob_last_pages())

    async def time_filter():
        got, _ = await page(bob, None, 50)
        start = stamp(got[20])
        iq = await bob["xep_0313"].retrieve(start=start, rsm={"max": 50}, timeout=10)
        want = [b for m, b in zip(got, bodies(got)) if stamp(m) >= start]
        return len(got) == 25 and bodies(iq["mam"]["results"]) == want and "20" in want
    await step("start filter with an archive stamp", time_filter())

    async def metadata():
        iq = await alice["xep_0313"].get_archive_metadata(timeout=10)
        md = iq["mam_metadata"]
        return md["start"]["id"] != "" and md["end"]["id"] != "" and md["start"]["id"] != md["end"]["id"]
    await step("archive metadata names the first and last message", metadata())

    async def forbidden():
        try:
            await bob["xep_0313"].retrieve(jid=alice_bare, timeout=10)
        except IqError as e:
            return e.iq["error"]["condition"] == "forbidden"
        return False
    await step("another user's archive is forbidden", forbidden())

    # The room.
    async def room():
        await alice["xep_0045"].join_muc_wait(ROOM, "alice", timeout=10)
        form = await alice["xep_0045"].get_room_config(ROOM)
        if "muc#roomconfig_enablearchiving" not in form.get_fields():
            return False
        await alice["xep_0045"].set_room_config(ROOM, form)
        await bob["xep_0045"].join_muc_wait(ROOM, "bob", timeout=10)
        info = await carol["xep_0030"].get_info(jid=ROOM)
        return MAM in info["disco_info"]["features"]
    await step("public room archives (config field, disco feature)", room())

    room_ids = []

    async def room_chat():
        for i in range(12):
            alice.send_message(mto=ROOM, mbody=f"room {i}", mtype="groupchat")
        for _ in range(12):
            m = await bob.expect(lambda m: m["type"] == "groupchat" and m["body"].startswith("room "))
            if m["stanza_id"]["by"] != ROOM.bare:
                return False
            room_ids.append(m["stanza_id"]["id"])
        return len(set(room_ids)) == 12
    await step("groupchat messages carry the room's stanza-id", room_chat())

    async def room_pages():
        got = [m async for m in carol["xep_0313"].iterate(jid=ROOM, rsm={"max": 5})]
        fwd = [m["mam_result"]["forwarded"]["stanza"] for m in got]
        return (bodies(got) == [f"room {i}" for i in range(12)]
                and all(f["from"] == slixmpp.JID(f"{ROOM}/alice") for f in fwd)
                and [m["mam_result"]["id"] for m in got] == room_ids)
    await step("outsider pages through the room's archive (3 pages of 5)", room_pages())

    for c in (alice, bob, carol):
        c.disconnect()


if __name__ == "__main__":
    sys.exit(common.run_main(main, 90, report))
