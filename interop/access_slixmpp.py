"""slixmpp clients against Parley's service access control (seed 000 SACL,
issue 16): each user outside one service's access list is refused that
service, with the XEP's error, and only that one; then `parley group add`
(another process writing storage) puts a new member of an auto-buddy group
into an online member's roster with a push. Prints PASS/FAIL lines; used
by interop/access.sh.

usage: access_slixmpp.py IP PORT DOMAIN PASSWORD PARLEY CONFIG
"""
import asyncio
import subprocess
import sys

from slixmpp.exceptions import IqError

import common

IP, PORT, DOMAIN, PASSWORD, PARLEY, CONFIG = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
MUC, PROXY, UPLOAD = "conference." + DOMAIN, "proxy." + DOMAIN, "upload." + DOMAIN
report = common.Report("slixmpp access ")


def step(name, coro, **kw):
    return common.step(report, name, coro, **kw)


async def connect(user):
    c = common.Client(f"{user}@{DOMAIN}/access", PASSWORD)
    if not await common.login(c, IP, PORT):
        raise RuntimeError(f"{user} could not log in")
    return c


async def iq_error(c, to, payload):
    """Send an IQ get with payload; its error condition, or "ok"."""
    iq = c.make_iq_get(ito=to)
    iq.append(payload)
    try:
        await iq.send(timeout=15)
        return "ok"
    except IqError as e:
        return e.iq["error"]["condition"]


def element(xml):
    from xml.etree import ElementTree
    return ElementTree.fromstring(xml)


def bytestreams(c):
    return iq_error(c, PROXY, element("<query xmlns='http://jabber.org/protocol/bytestreams'/>"))


def upload_slot(c):
    return iq_error(c, UPLOAD, element(
        "<request xmlns='urn:xmpp:http:upload:0' filename='note.txt' size='12' content-type='text/plain'/>"))


async def join(c, room, nick):
    """Join room as nick: "ok" or the presence error condition."""
    fut = asyncio.get_event_loop().create_future()
    full = f"{room}@{MUC}/{nick}"

    def on_presence(p):
        if str(p["from"]) == full and not fut.done():
            fut.set_result(p["error"]["condition"] if p["type"] == "error" else "ok")
    c.add_event_handler("presence", on_presence)
    pres = c.make_presence(pto=full)
    pres.append(element("<x xmlns='http://jabber.org/protocol/muc'/>"))
    pres.send()
    try:
        return await common.wait(fut, 15)
    finally:
        c.del_event_handler("presence", on_presence)


async def message_to(c, to):
    """Send a chat message; the error condition that comes back, or "none"
    within a few seconds."""
    fut = asyncio.get_event_loop().create_future()
    mid = c.new_id()

    def on_message(m):
        if m["id"] == mid and m["type"] == "error" and not fut.done():
            fut.set_result(m["error"]["condition"])
    c.add_event_handler("message", on_message)
    msg = c.make_message(mto=to, mbody="hello", mtype="chat")
    msg["id"] = mid
    msg.send()
    try:
        r = await common.wait(fut, 8)
        return "none" if r == "timeout" else r
    finally:
        c.del_event_handler("message", on_message)


async def main():
    async def mallory():
        c = common.Client(f"mallory@{DOMAIN}/access", PASSWORD)
        ok = await common.login(c, IP, PORT)
        c.disconnect()
        return ok
    await step("mallory (login deny_users) cannot log in", mallory(), ok=lambda r: r is False)

    alice, bob, carol, dave, eve = [await connect(u) for u in ("alice", "bob", "carol", "dave", "eve")]

    # Room creation: muc_create allows alice only.
    await step("bob (not in muc_create) cannot create a room: not-allowed", join(bob, "bobs", "bob"),
               ok=lambda r: r == "not-allowed", detail=str)
    await step("alice creates a room", join(alice, "lobby", "alice"), ok=lambda r: r == "ok", detail=str)
    cfg = alice.make_iq_set(ito=f"lobby@{MUC}")
    cfg.append(element("<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>"))
    await cfg.send(timeout=15)
    # Joining: muc_join denies carol.
    await step("carol (muc_join deny) cannot join: forbidden", join(carol, "lobby", "carol"),
               ok=lambda r: r == "forbidden", detail=str)
    await step("bob joins the room (only creation refused)", join(bob, "lobby", "bob"), ok=lambda r: r == "ok", detail=str)
    await step("dave joins the room", join(dave, "lobby", "dave"), ok=lambda r: r == "ok", detail=str)

    # File-transfer proxy: dave is refused, the others served.
    await step("dave (proxy65 deny) is refused the proxy: forbidden", bytestreams(dave), ok=lambda r: r == "forbidden", detail=str)
    await step("carol uses the proxy", bytestreams(carol), ok=lambda r: r == "ok", detail=str)
    await step("eve uses the proxy", bytestreams(eve), ok=lambda r: r == "ok", detail=str)

    # Upload: eve is refused a slot, the others get one.
    await step("eve (upload deny) is refused a slot: forbidden", upload_slot(eve), ok=lambda r: r == "forbidden", detail=str)
    await step("dave gets an upload slot", upload_slot(dave), ok=lambda r: r == "ok", detail=str)
    await step("carol gets an upload slot", upload_slot(carol), ok=lambda r: r == "ok", detail=str)

    # Federation: only staff may talk to remote domains. With federation
    # off on this server, a permitted message meets remote-server-not-found.
    remote = "someone@remote.invalid"
    await step("bob (not staff) may not talk to a remote domain: forbidden", message_to(bob, remote),
               ok=lambda r: r == "forbidden", detail=str)
    await step("alice (staff) passes the federation rule", message_to(alice, remote),
               ok=lambda r: r == "remote-server-not-found", detail=str)
    await step("bob still talks to local users", message_to(bob, f"carol@{DOMAIN}"), ok=lambda r: r == "none", detail=str)

    # Auto-buddy: `parley group add staff bob` while alice is online.
    pushed = asyncio.get_event_loop().create_future()

    def on_roster(_):
        item = alice.client_roster[f"bob@{DOMAIN}"]
        if "Staff" in item["groups"] and item["subscription"] == "both" and not pushed.done():
            pushed.set_result(True)
    alice.add_event_handler("roster_update", on_roster)
    out = subprocess.run([PARLEY, "group", "add", "staff", f"bob@{DOMAIN}", "--config", CONFIG],
                         capture_output=True, text=True)
    report("parley group add staff bob", out.returncode == 0, out.stderr.strip())
    await step("alice gets bob in her roster (group Staff, both) by a push", common.wait(pushed, 20),
               ok=lambda r: r is True, detail=str)
    # bob, now staff, may federate.
    ok = False
    for _ in range(20):
        if await message_to(bob, remote) == "remote-server-not-found":
            ok = True
            break
        await asyncio.sleep(0.5)
    report("bob, now staff, passes the federation rule", ok)

    for c in (alice, bob, carol, dave, eve):
        c.disconnect()


sys.exit(common.run_main(main, 240, report))
