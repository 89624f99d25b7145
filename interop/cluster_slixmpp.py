#!/usr/bin/python3
"""A three-node Parley cluster with slixmpp clients and a Prosody peer (run
by interop/cluster.sh, which starts the servers).

alice and dave are on node1, bob and erin on node2, carol on node3, pat
on Prosody. They log in, subscribe and see presence, chat across nodes,
share one persistent room (created through node1, so node1 holds it) and
federate. carol's connection then drops and her client resumes her
XEP-0198 session through node2, which takes it over from the live node3
(nobody sees her leave; a message sent meanwhile arrives; she stays in
the room, now on node2). Then alice and bob write to each other and carol to dave,
numbered messages with XEP-0198 acknowledgements after every stanza, and
node1 is killed with SIGKILL half way. alice reconnects at once, to
node3; dave stays away until a survivor has announced him offline and
carol has written to him again, then comes back on node2. Every message a
server acknowledged reaches its recipient exactly once (live, from
offline storage, or in the archive when it was in flight to the dead
node), the room is usable again within 10 s, and federation still works.

    cluster_slixmpp.py --nodes IP1,IP2,IP3 --pids PID1,PID2,PID3
        --prosody IP --domain D --peer-domain Q --password PW
        --status "parley cluster status --json --config FILE" [-v]

Prints PASS/FAIL lines; exit status non-zero if anything failed.
"""
import argparse
import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import slixmpp

import common

ap = argparse.ArgumentParser()
ap.add_argument("--nodes", required=True)
ap.add_argument("--pids", required=True)
ap.add_argument("--prosody", required=True)
ap.add_argument("--domain", required=True)
ap.add_argument("--peer-domain", required=True)
ap.add_argument("--password", required=True)
ap.add_argument("--status", required=True)
ap.add_argument("-v", action="store_true")
args = ap.parse_args()
NODES = args.nodes.split(",")
PIDS = [int(p) for p in args.pids.split(",")]
D, Q, PW = args.domain, args.peer_domain, args.password
ROOM = f"lounge@conference.{D}"
STEP = 20        # seconds for one step: generous, a loaded machine is slow
N = 40           # numbered messages each way around the kill
report = common.Report()

NS_MUC_USER = "{http://jabber.org/protocol/muc#user}"
NS_MAM = "{urn:xmpp:mam:2}"


def progress(line):
    print("  " + line, flush=True)


class Client(common.Client):
    """Records what arrives: chat messages (id, body) apart from archive
    results, groupchat bodies, presence with its MUC status codes, the ids
    of its own stanzas the server acknowledged (XEP-0198), disconnection."""

    def __init__(self, jid, sm=False):
        plugins = ["xep_0004", "xep_0030", "xep_0045", "xep_0059", "xep_0313", "xep_0199"]
        config = {}
        if sm:
            plugins.append("xep_0198")
            config["xep_0198"] = {"window": 1}   # ask for an ack after every stanza
        super().__init__(jid, PW, plugins=plugins, plugin_config=config)
        self.roster.auto_authorize = True
        self.roster.auto_subscribe = True
        self.chats, self.groupchats, self.presences = [], [], []
        self.acked = set()
        self.gone = asyncio.get_event_loop().create_future()
        self.add_event_handler("message", self._message)
        # xep_0045 keeps room presence from the roster's "presence" event
        # and fires "groupchat_presence" for it instead.
        self.add_event_handler("presence", lambda p: p["from"].domain != f"conference.{D}" and self._presence(p))
        self.add_event_handler("groupchat_presence", self._presence)
        self.add_event_handler("stanza_acked", self._acked)
        self.add_event_handler("disconnected", lambda _: self.gone.done() or self.gone.set_result(time.monotonic()))

    def _message(self, m):
        if m.xml.find(NS_MAM + "result") is not None:
            return  # an archive result: read from the query's answer
        if m["type"] == "groupchat":
            if m["body"]:
                self.groupchats.append((str(m["from"]), m["body"]))
        elif m["body"]:
            self.chats.append((str(m["from"]), m["id"], m["body"]))

    def _presence(self, p):
        x = p.xml.find(NS_MUC_USER + "x")
        codes = {s.get("code") for s in x.findall(NS_MUC_USER + "status")} if x is not None else set()
        self.presences.append((str(p["from"]), p["type"], p["status"], codes))

    def _acked(self, st):
        if st.name == "message" and st["id"]:
            self.acked.add(st["id"])

    def bodies_from(self, bare):
        return [(i, b) for f, i, b in self.chats if slixmpp.JID(f).bare == bare]


async def until(pred, timeout=STEP):
    """True once pred() holds (checked every 50 ms), False after timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return bool(pred())


async def online(jid, ip, sm=False):
    c = Client(jid, sm=sm)
    ok = await common.login(c, ip, 5222, timeout=STEP * 2)
    return c, ok


def status():
    """parley cluster status --json, read from NATS."""
    out = subprocess.run(shlex.split(args.status), capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr}


def room_holder():
    st = status()
    for r in st.get("rooms") or []:
        if r["name"] == ROOM:
            return r["node"], r["holder_live"]
    return None, False


async def chat(a, b, text):
    """a writes text to b's bare JID; True once b has it."""
    a.send_message(mto=b.boundjid.bare, mbody=text, mtype="chat")
    return await until(lambda: any(t == text for _, _, t in b.chats))


async def all_acked(c, ids, timeout=STEP):
    """True once the server acknowledged every stanza id in ids. slixmpp
    writes its <r/> before the stanza that fills the window, and
    request_ack() writes at once, ahead of stanzas still queued: so ask
    again every second until the answer covers them all."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        c["xep_0198"].request_ack()
        if await until(lambda: set(ids) <= c.acked, 1):
            return True
    return False


def numbered(c, to, text):
    """A chat message whose stanza id is its body."""
    m = c.make_message(mto=to, mbody=text, mtype="chat")
    m["id"] = text
    m.send()


async def groupchat(sender, text, *others):
    sender.send_message(mto=ROOM, mbody=text, mtype="groupchat")
    return await until(lambda: all(any(t == text for _, t in c.groupchats) for c in (sender,) + others))


async def join(c, nick):
    """Join ROOM; the set of status codes of the self-presence, or None."""
    pres, _subject, _occ, _hist = await c["xep_0045"].join_muc_wait(slixmpp.JID(ROOM), nick, timeout=STEP)
    return {str(s) for s in pres["muc"]["status_codes"]}


async def archive(c, with_jid):
    """c's archived messages with with_jid: a list of (id, body), in order."""
    got = [m async for m in c["xep_0313"].iterate(with_jid=slixmpp.JID(with_jid), rsm={"max": 50})]
    out = []
    for m in got:
        st = m["mam_result"]["forwarded"]["stanza"]
        out.append((st["id"], st["body"]))
    return out


async def step(name, coro, ok=lambda r: r is not False and r is not None, detail=lambda r: ""):
    return await common.step(report, name, coro, ok, detail)


async def main():
    # ---- logins on three nodes and Prosody
    alice, ok = await online(f"alice@{D}/a", NODES[0], sm=True)
    report(f"alice logs in on node1 ({NODES[0]})", ok)
    bob, ok = await online(f"bob@{D}/b", NODES[1], sm=True)
    report(f"bob logs in on node2 ({NODES[1]})", ok)
    carol, ok = await online(f"carol@{D}/c", NODES[2], sm=True)
    report(f"carol logs in on node3 ({NODES[2]})", ok)
    erin, ok = await online(f"erin@{D}/e", NODES[1])
    report(f"erin logs in on node2 ({NODES[1]})", ok)
    dave, ok = await online(f"dave@{D}/d", NODES[0])
    report(f"dave logs in on node1 ({NODES[0]})", ok)
    pat, ok = await online(f"pat@{Q}/p", args.prosody)
    report(f"pat logs in on Prosody ({args.prosody})", ok)
    if report.failures:
        return

    # ---- presence: a subscription made across nodes, then a change
    alice.send_presence_subscription(pto=f"bob@{D}")
    await step("alice (node1) and bob (node2) subscribe to each other; each sees the other online",
               until(lambda: any(f == f"bob@{D}/b" and t == "available" for f, t, _, _ in alice.presences)
                     and any(f == f"alice@{D}/a" and t == "available" for f, t, _, _ in bob.presences)))
    dave.send_presence_subscription(pto=f"bob@{D}")
    await step("dave (node1) and bob (node2) subscribe to each other",
               until(lambda: any(f == f"dave@{D}/d" and t == "available" for f, t, _, _ in bob.presences)))
    bob.send_presence(pshow="away", pstatus="on node2")
    await step("bob's presence change (away) reaches alice on node1",
               until(lambda: any(f == f"bob@{D}/b" and s == "on node2" for f, _, s, _ in alice.presences)))

    # ---- chat across nodes
    await step("chat node1 -> node2 (alice to bob)", chat(alice, bob, "hello bob, from node1"))
    await step("chat node2 -> node1 (bob to alice)", chat(bob, alice, "hello alice, from node2"))
    await step("chat node3 -> node1 (carol to alice)", chat(carol, alice, "hello alice, from node3"))
    await step("chat node2 -> node3 (bob to carol)", chat(bob, carol, "hello carol, from node2"))

    # ---- one room, occupants on three nodes
    await step("alice creates the room through node1 (201)", join(alice, "alice"), ok=lambda r: r and "201" in r,
               detail=lambda r: f"status codes {r}")

    async def configure():
        form = await alice["xep_0045"].get_room_config(slixmpp.JID(ROOM))
        form.set_values({"muc#roomconfig_persistentroom": True, "muc#roomconfig_roomname": "Cluster Lounge"})
        await alice["xep_0045"].set_room_config(slixmpp.JID(ROOM), form)
        return True
    await step("alice makes the room persistent", configure())
    await step("bob joins from node2", join(bob, "bob"))
    await step("carol joins from node3", join(carol, "carol"))
    await step("erin joins from node2", join(erin, "erin"))
    holder = await asyncio.to_thread(room_holder)
    report("parley cluster status: node1 holds the room", holder == ("node1", True), f"holder {holder}")
    await step("groupchat from node1 reaches all three nodes", groupchat(alice, "room: alice on node1", bob, carol, erin))
    await step("groupchat from node2 reaches all three nodes", groupchat(bob, "room: bob on node2", alice, carol, erin))
    await step("groupchat from node3 reaches all three nodes", groupchat(carol, "room: carol on node3", alice, bob, erin))

    # ---- federation from two nodes, both directions
    await step("federation node1 -> Prosody (alice to pat)", chat(alice, pat, "hi pat, alice on node1"))
    await step("federation Prosody -> node1 (pat to alice)", chat(pat, alice, "hi alice, from prosody"))
    await step("federation node2 -> Prosody (bob to pat)", chat(bob, pat, "hi pat, bob on node2"))
    await step("federation Prosody -> node2 (pat to bob)", chat(pat, bob, "hi bob, from prosody"))
    if report.failures:
        return

    # ---- XEP-0198 resumption through another node while the first lives
    # (a load balancer's choice): carol's connection to node3 drops; her
    # client connects to node2 and resumes there. node2 takes the session
    # over from node3: the message bob sent her meanwhile arrives, nobody
    # sees her leave, she is still in the room, and from now on she is on
    # node2 (where the kill below must tell her the room went away).
    resumed = asyncio.get_event_loop().create_future()
    carol.add_event_handler("session_resumed", lambda _: resumed.done() or resumed.set_result(True))
    mark_c, mark_bob_p = len(carol.chats), len(bob.presences)
    gone = carol.gone
    carol.transport.abort()  # the network drops: no closing stream, no TLS close_notify
    await step("carol's connection to node3 drops", common.wait(gone, STEP), ok=lambda r: r != "timeout")
    carol.gone = asyncio.get_event_loop().create_future()
    bob.send_message(mto=f"carol@{D}/c", mbody="while carol is away", mtype="chat")
    await asyncio.sleep(0.5)
    carol.connect(address=(NODES[1], 5222))
    await step(f"carol's client resumes her session through node2 ({NODES[1]}): <resumed/>",
               common.wait(resumed, STEP), ok=lambda r: r is True)
    await step("the message bob sent her while she was away arrives",
               until(lambda: any(t == "while carol is away" for _, _, t in carol.chats[mark_c:])))
    await step("groupchat still reaches carol, now through node2", groupchat(bob, "room: carol moved", carol, erin))
    report("nobody in the room saw carol leave",
           not any(f == f"{ROOM}/carol" and t == "unavailable" for f, t, _, _ in bob.presences[mark_bob_p:]))

    # ---- SIGKILL node1 (holding alice and the room) mid-conversation
    report("alice's, bob's and carol's streams have XEP-0198 enabled",
           alice["xep_0198"].enabled_out and bob["xep_0198"].enabled_out and carol["xep_0198"].enabled_out)
    b2a = [f"b2a-{i}" for i in range(N)]
    a2b = [f"a2b-{i}" for i in range(N)]
    c2d = [f"c2d-{i}" for i in range(N)]
    late = [f"c2d-late-{i}" for i in range(5)]
    alice_bare, bob_bare, carol_bare, dave_bare = f"alice@{D}", f"bob@{D}", f"carol@{D}", f"dave@{D}"
    mark_a, mark_b, mark_d = len(alice.chats), len(bob.chats), len(dave.chats)

    def live_at(c, mark, bare, prefix):
        return [(i, b) for f, i, b in c.chats[mark:] if slixmpp.JID(f).bare == bare and b.startswith(prefix)]

    killed_at = None
    for i in range(N):
        if i == N // 2:
            # Half way, and once the first half is flowing both ways.
            await until(lambda: len(live_at(alice, mark_a, bob_bare, "b2a-")) >= N // 4
                        and len(live_at(bob, mark_b, alice_bare, "a2b-")) >= N // 4)
            with open(f"/proc/{PIDS[0]}/cmdline", "rb") as f:
                if b"parley" not in f.read():  # never another process that got the PID
                    raise RuntimeError(f"pid {PIDS[0]} is not parley node1")
            os.kill(PIDS[0], signal.SIGKILL)
            killed_at = time.monotonic()
            report(f"node1, holding the room and alice, killed with SIGKILL (pid {PIDS[0]}) after {i} messages each way", True)
        numbered(bob, alice_bare, b2a[i])
        numbered(carol, dave_bare, c2d[i])
        if killed_at is None:
            numbered(alice, bob_bare, a2b[i])
        await asyncio.sleep(0.05)
    await step("alice's and dave's clients see their connections to node1 drop",
               common.wait(asyncio.gather(alice.gone, dave.gone), STEP), ok=lambda r: r != "timeout")
    alice_acked = set(alice.acked)
    progress(f"node1 acknowledged {len(alice_acked & set(a2b))} of alice's messages before it died")
    await step("node2 (carol's since she resumed there) acknowledges every message carol sent to dave", all_acked(carol, c2d),
               detail=lambda r: f"unacknowledged {sorted(set(c2d) - carol.acked)}")
    await step("node2 acknowledges every message bob sent", all_acked(bob, b2a),
               detail=lambda r: f"unacknowledged {sorted(set(b2a) - bob.acked)}")

    # alice's client reconnects at once, to node3.
    alice_live_before = live_at(alice, mark_a, bob_bare, "b2a-")
    alice2, ok = await online(f"alice@{D}/a", NODES[2], sm=True)
    report(f"alice reconnects to node3 ({NODES[2]}) {time.monotonic() - killed_at:.1f} s after the kill", ok)

    # The room: the survivors' occupants are told it went away (332) and
    # join again; a surviving node reloads it from storage.
    def got_332(c, nick):
        return any(f == f"{ROOM}/{nick}" and t == "unavailable" and "332" in codes for f, t, _, codes in c.presences)
    await step("bob, erin and carol (node2, carol since her resumption) get the room's unavailable presence with status 332",
               until(lambda: got_332(bob, "bob") and got_332(erin, "erin") and got_332(carol, "carol"), STEP))
    # bob and erin at once, through the same node: whichever join makes
    # node2 take the room over, the other must wait for the reload.
    await step("bob and erin rejoin at once through node2: the room is back from storage (no 201)",
               asyncio.gather(join(bob, "bob"), join(erin, "erin")),
               ok=lambda r: r is not None and all("201" not in codes for codes in r),
               detail=lambda r: f"status codes {r}")
    await step("carol rejoins", join(carol, "carol"))
    r = await step("groupchat works again after the failover", groupchat(carol, "room: back", bob, erin))
    back = time.monotonic() - killed_at
    report(f"the room is usable again within 10 s of the kill ({back:.1f} s)", r and back <= 10)
    holder = await asyncio.to_thread(room_holder)
    report("parley cluster status: a surviving node holds the room", holder in (("node2", True), ("node3", True)),
           f"holder {holder}")
    # dave's client does not come back: a surviving node says he is gone
    # (RFC 6121 4.5.2) once node1's lease has run out. (alice's session
    # was replaced by her new one on node3 before that: bob sees her
    # available again instead, checked below.)
    await step("bob is told that dave, whose node died and who did not come back, is offline",
               until(lambda: any(f == f"dave@{D}/d" and t == "unavailable" for f, t, _, _ in bob.presences)))

    # dave is offline now: what carol sends him goes to offline storage,
    # and he comes back (to node2) later.
    dave_live_before = live_at(dave, mark_d, carol_bare, "c2d-")
    for m in late:
        numbered(carol, dave_bare, m)
    await step("node2 acknowledges carol's messages to the offline dave", all_acked(carol, late),
               detail=lambda r: f"unacknowledged {sorted(set(late) - carol.acked)}")
    dave2, ok = await online(f"dave@{D}/d", NODES[1])
    report(f"dave comes back, to node2 ({NODES[1]})", ok)
    await step("dave gets what carol sent while he was offline, from offline storage",
               until(lambda: set(late) <= {b for _, b in dave2.bodies_from(carol_bare)}),
               detail=lambda r: f"got {[b for _, b in dave2.bodies_from(carol_bare)]}")
    dave_arch = await step("dave reads his archive with carol", archive(dave2, carol_bare), ok=lambda r: r is not None)
    got_d = dave_live_before + [(i, b) for i, b in dave2.bodies_from(carol_bare) if b.startswith("c2d-")]
    delivered_d = [b for _, b in got_d]
    archived_d = {b for _, b in dave_arch or []}
    missing_d = [m for m in c2d + late if m in carol.acked and m not in delivered_d and m not in archived_d]
    report(f"every message the server acknowledged to carol reaches dave ({len(set(delivered_d))} delivered live or "
           f"offline, {len(archived_d & set(c2d + late))} archived, of {N + len(late)})", not missing_d,
           f"missing {missing_d}")
    ids_d = [i for i, _ in got_d]
    dups_d = sorted({x for x in ids_d if ids_d.count(x) > 1})
    report("no message to dave delivered twice (by stanza id)", not dups_d, f"twice: {dups_d}")

    # ---- no acknowledged message lost, none twice
    # Live before the kill + delivered to alice's new session (offline
    # storage or live) + her archive, which holds what was in flight to node1.
    await until(lambda: set(b2a) <= {b for _, b in alice_live_before + alice2.bodies_from(bob_bare)}, 5)
    alice_arch = await step("alice (now on node3) reads her archive with bob", archive(alice2, bob_bare),
                            ok=lambda r: r is not None)
    delivered = [b for _, b in alice_live_before + alice2.bodies_from(bob_bare) if b.startswith("b2a-")]
    ids = [i for i, b in alice_live_before + alice2.bodies_from(bob_bare) if b.startswith("b2a-")]
    archived = {b for _, b in alice_arch or []}
    missing = [m for m in b2a if m in bob.acked and m not in delivered and m not in archived]
    report(f"every message node2 acknowledged to bob reaches alice ({len(set(delivered))} delivered, "
           f"{len(archived & set(b2a))} archived, of {N})", not missing, f"missing {missing}")
    dups = sorted({x for x in ids if ids.count(x) > 1})
    report("no message to alice delivered twice (by stanza id)", not dups, f"twice: {dups}")
    arch_dups = sorted({b for _, b in alice_arch or [] if [x for _, x in alice_arch].count(b) > 1})
    report("no message archived twice for alice", not arch_dups, f"twice: {arch_dups}")

    bob_arch = await step("bob reads his archive with alice", archive(bob, alice_bare), ok=lambda r: r is not None)
    got_b = live_at(bob, mark_b, alice_bare, "a2b-")
    delivered_b = [b for _, b in got_b]
    archived_b = {b for _, b in bob_arch or []}
    missing_b = [m for m in a2b if m in alice_acked and m not in delivered_b and m not in archived_b]
    report(f"every message node1 acknowledged to alice before dying reaches bob ({len(alice_acked & set(a2b))} "
           f"acknowledged, {len(set(delivered_b))} delivered)", not missing_b, f"missing {missing_b}")
    ids_b = [i for i, _ in got_b]
    dups_b = sorted({x for x in ids_b if ids_b.count(x) > 1})
    report("no message to bob delivered twice (by stanza id)", not dups_b, f"twice: {dups_b}")

    # ---- after the failover
    await step("alice rejoins the room from node3, still its owner",
               alice2["xep_0045"].join_muc_wait(slixmpp.JID(ROOM), "alice", timeout=STEP),
               ok=lambda r: r is not None and r[0]["muc"]["affiliation"] == "owner",
               detail=lambda r: f"affiliation {r and r[0]['muc']['affiliation']}")
    await step("groupchat from alice on node3 reaches bob and carol", groupchat(alice2, "room: alice is back", bob, carol))
    await step("bob sees alice online again", until(lambda: sum(1 for f, t, _, _ in bob.presences
                                                                if f == f"alice@{D}/a" and t == "available") >= 2))
    await step("chat node3 -> node2 after the failover (alice to bob)", chat(alice2, bob, "alice again, on node3"))
    await step("chat node2 -> node3 after the failover (bob to alice)", chat(bob, alice2, "welcome back alice"))
    await step("federation node3 -> Prosody after the failover (alice to pat)", chat(alice2, pat, "pat, alice on node3"))
    await step("federation Prosody -> node3 after the failover (pat to alice)", chat(pat, alice2, "alice, pat here again"))
    await step("federation node2 -> Prosody after the failover (bob to pat)", chat(bob, pat, "pat, bob still on node2"))
    await step("federation Prosody -> node2 after the failover (pat to bob)", chat(pat, bob, "bob, pat here again"))
    st = await asyncio.to_thread(status)
    live = {n["name"]: n["live"] for n in st.get("nodes") or []}
    report("parley cluster status: node1 dead, node2 and node3 live",
           live == {"node1": False, "node2": True, "node3": True}, f"nodes {live}")

    for c in (alice2, bob, carol, dave2, erin, pat):
        c.disconnect()
    await until(lambda: all(c.gone.done() for c in (alice2, bob, carol, dave2, erin, pat)), 5)


sys.exit(common.run_main(main, 360, report))
