"""slixmpp (xep_0060, xep_0163, xep_0084, xep_0115) against Parley's personal
eventing (XEP-0163): the account's disco, a XEP-0084 avatar published by
alice and received by her contact bob through +notify (and by a resource
of bob's that logs in later, as the last item), XEP-0402 bookmarks
published with publish-options from one resource and seen by another,
private to alice, and an OMEMO device list and bundle with the open access
model fetched by someone who is not a contact. Prints PASS/FAIL lines;
used by interop/pep.sh.

usage: pep_slixmpp.py IP PORT DOMAIN PASSWORD
"""
import asyncio
import base64
import hashlib
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError

import common

IP, PORT, DOMAIN, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
report = common.Report("slixmpp pep ")

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_ERRORS = NS_PUBSUB + "#errors"
BOOKMARKS = "urn:xmpp:bookmarks:1"
OMEMO_DEVICES = "eu.siacs.conversations.axolotl.devicelist"
OMEMO_BUNDLE = "eu.siacs.conversations.axolotl.bundles:4223"
OMEMO2_DEVICES = "urn:xmpp:omemo:2:devices"
OMEMO2_BUNDLES = "urn:xmpp:omemo:2:bundles"
AVATAR_META = "urn:xmpp:avatar:metadata"
AVATAR_DATA = "urn:xmpp:avatar:data"


class Client(common.Client):
    """A client that advertises <node>+notify for the given nodes (through
    XEP-0115, before its initial presence) and queues pubsub events."""

    def __init__(self, user, resource, interests=(), extra=()):
        super().__init__(f"{user}@{DOMAIN}/{resource}", PASSWORD,
                         plugins=("xep_0004", "xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0084", "xep_0199", "xep_0203") + extra)
        self.interests = interests
        self.events = asyncio.Queue()
        self.add_event_handler("pubsub_publish", lambda m: self.events.put_nowait(m))
        self.add_event_handler("pubsub_retract", lambda m: self.events.put_nowait(m))

    async def on_start(self):
        for ns in self.interests:
            self["xep_0030"].add_feature(ns + "+notify")
        # The capabilities must be current before the initial presence
        # carries them.
        await self["xep_0115"].update_caps(broadcast=False)
        self.send_presence()
        await self.get_roster()

    async def next_event(self, node, pred=lambda m: True, timeout=10):
        loop = asyncio.get_event_loop()
        end = loop.time() + timeout
        while True:
            left = end - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError(f"no event from {node}")
            m = await asyncio.wait_for(self.events.get(), left)
            if m["pubsub_event"]["items"]["node"] == node and pred(m):
                return m

    def no_event(self, node):
        while not self.events.empty():
            m = self.events.get_nowait()
            if m["pubsub_event"]["items"]["node"] == node:
                return False
        return True


async def connect(user, resource, interests=(), extra=()):
    c = Client(user, resource, interests, extra)
    if not await common.login(c, IP, PORT):
        raise RuntimeError(f"{user}/{resource} could not log in")
    return c


def step(name, coro):
    return common.step(report, name, coro)


def expect_error(name, coro, want):
    """A check that passes when coro (refused(...)) reports error want."""
    return common.step(report, name, coro, ok=lambda r: r == want, detail=lambda r: f"got {r}")


def options(client, **fields):
    """A publish-options form (XEP-0060 §7.1.5)."""
    form = client["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value=NS_PUBSUB + "#publish-options")
    for k, v in fields.items():
        form.add_field(var="pubsub#" + k, value=v)
    return form


def error_of(e):
    cond = e.iq["error"]["condition"]
    app = [c.tag.split("}")[1] for c in e.iq["error"].xml if c.tag.startswith("{" + NS_PUBSUB_ERRORS + "}")]
    return cond + ("/" + app[0] if app else "")


async def refused(coro):
    try:
        await coro
    except IqError as e:
        return error_of(e)
    return "result"


async def main():
    alice = await connect("alice", "phone")
    bob = await connect("bob", "desktop", interests=(AVATAR_META,))

    async def subscribe():
        # Mutual subscription, the way clients make it: alice asks, bob's
        # slixmpp approves and asks back, alice's approves.
        alice.send_presence(pto=f"bob@{DOMAIN}", ptype="subscribe")
        for _ in range(100):
            a, b = alice.client_roster[f"bob@{DOMAIN}"], bob.client_roster[f"alice@{DOMAIN}"]
            if a["subscription"] == "both" and b["subscription"] == "both":
                return True
            await asyncio.sleep(0.1)
        return False
    await step("alice and bob subscribe to each other", subscribe())

    async def disco():
        info = await alice["xep_0030"].get_info(jid=f"alice@{DOMAIN}")
        ids = info["disco_info"]["identities"]
        feats = set(info["disco_info"]["features"])
        want = {NS_PUBSUB + "#" + f for f in ("auto-create", "publish-options", "persistent-items", "last-published",
                                             "access-presence", "access-open", "access-whitelist", "retrieve-items",
                                             "filtered-notifications")}
        return any(i[0] == "pubsub" and i[1] == "pep" for i in ids) and want <= feats
    await step("the account is a pubsub/pep service announcing its features", disco())

    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
    avatar_id = hashlib.sha1(png).hexdigest()

    async def avatar():
        await alice["xep_0084"].publish_avatar(png, timeout=10)
        await alice["xep_0084"].publish_avatar_metadata(
            [{"id": avatar_id, "type": "image/png", "bytes": str(len(png)), "height": "1", "width": "1"}], timeout=10)
        m = await bob.next_event(AVATAR_META)
        item = m["pubsub_event"]["items"]["item"]
        if item["id"] != avatar_id or str(m["from"]) != f"alice@{DOMAIN}":
            return False
        data = await bob["xep_0084"].retrieve_avatar(f"alice@{DOMAIN}", avatar_id, timeout=10)
        got = data["pubsub"]["items"]["item"]["avatar_data"]["value"]
        return got == png
    await step("alice's avatar reaches bob through +notify, and bob fetches the data", avatar())

    async def last_item():
        bob2 = await connect("bob", "laptop", interests=(AVATAR_META,))
        try:
            m = await bob2.next_event(AVATAR_META)
            return m["pubsub_event"]["items"]["item"]["id"] == avatar_id and m["delay"]["stamp"] is not None
        finally:
            bob2.disconnect()
    await step("a resource of bob's that logs in later gets the avatar as the last item (delayed)", last_item())

    async def no_interest():
        other = await connect("bob", "nointerest")
        try:
            tune = ET.fromstring("<tune xmlns='http://jabber.org/protocol/tune'><title>Interop</title></tune>")
            await alice["xep_0060"].publish(None, "http://jabber.org/protocol/tune", id="current", payload=tune, timeout=10)
            # A ping's answer comes after anything queued before it.
            for c in (other, bob):
                await c["xep_0199"].ping(jid=DOMAIN, timeout=10)
            return other.no_event("http://jabber.org/protocol/tune") and bob.no_event("http://jabber.org/protocol/tune")
        finally:
            other.disconnect()
    await step("resources without tune+notify get no tune event", no_interest())

    async def forbidden():
        return await refused(bob["xep_0060"].publish(f"alice@{DOMAIN}", AVATAR_META, id="x",
                                                      payload=ET.fromstring(f"<metadata xmlns='{AVATAR_META}'/>"), timeout=10))
    await expect_error("bob may not publish to alice's service: forbidden", forbidden(), "forbidden")

    # Bookmarks (XEP-0402): alice's second resource wants them.
    alice2 = await connect("alice", "tablet", interests=(BOOKMARKS,), extra=("xep_0045",))
    room = f"interop@conference.{DOMAIN}"
    events = {}

    async def bookmark():
        conf = ET.fromstring(f"<conference xmlns='{BOOKMARKS}' name='Interop' autojoin='true'><nick>alice-tablet</nick></conference>")
        await alice["xep_0060"].publish(None, BOOKMARKS, id=room, payload=conf, timeout=10,
                                        options=options(alice, persist_items="true", max_items="max",
                                                        send_last_published_item="never", access_model="whitelist"))
        m = await alice2.next_event(BOOKMARKS)
        events["bookmark"] = m
        return m["pubsub_event"]["items"]["item"]["id"] == room
    await step("a bookmark published from one resource reaches the other (+notify)", bookmark())

    async def autojoin():
        # What a XEP-0402 client does with the event: autojoin='true'
        # means enter the room now, with the bookmark's nick.
        item = events["bookmark"]["pubsub_event"]["items"]["item"]
        conf = item.xml.find(f"{{{BOOKMARKS}}}conference")
        if conf is None or conf.get("autojoin") not in ("true", "1"):
            raise AssertionError(f"no autojoin in {item}")
        nick = conf.findtext(f"{{{BOOKMARKS}}}nick")
        pres, _subject, _occupants, _history = await alice2["xep_0045"].join_muc_wait(slixmpp.JID(item["id"]), nick, maxstanzas=0, timeout=10)
        return str(pres["from"]) == f"{room}/{nick}" and "110" in [str(c) for c in pres["muc"]["status_codes"]]
    await step("the other resource joins the bookmarked room (autojoin) with the bookmark's nick", autojoin())

    async def room_avatar():
        # XEP-0486: the owner (alice's tablet created the room by joining)
        # sets the room's vCard; bob, outside the room, finds the hash in
        # its disco#info and the image in its vCard.
        instant = alice2.make_iq_set(ito=room)  # XEP-0045 §10.1.2: an instant room
        instant.append(ET.fromstring("<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>"))
        await instant.send(timeout=10)
        iq = alice2.make_iq_set(ito=room)
        iq.append(ET.fromstring("<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>"
                                + base64.b64encode(png).decode() + "</BINVAL></PHOTO></vCard>"))
        await iq.send(timeout=10)
        info = await bob["xep_0030"].get_info(jid=room, timeout=10)
        form = info["disco_info"]["form"]
        hashes = form.get_fields().get("muc#roominfo_avatarhash")
        if hashes is None or avatar_id not in hashes.get_value():
            raise AssertionError(f"roominfo: {form}")
        get = bob.make_iq_get(ito=room)
        get.append(ET.fromstring("<vCard xmlns='vcard-temp'/>"))
        res = await get.send(timeout=10)
        binval = res.xml.find("{vcard-temp}vCard/{vcard-temp}PHOTO/{vcard-temp}BINVAL")
        return binval is not None and base64.b64decode(binval.text) == png
    await step("the room's owner sets its avatar (vCard); a non-occupant sees the hash in disco#info and reads it", room_avatar())

    async def bookmarks_read():
        iq = await alice2["xep_0060"].get_items(f"alice@{DOMAIN}", BOOKMARKS, timeout=10)
        items = list(iq["pubsub"]["items"])
        conf = items[0].xml.find(f"{{{BOOKMARKS}}}conference") if items else None
        return len(items) == 1 and items[0]["id"] == room and conf is not None and conf.get("name") == "Interop"
    await step("the other resource reads the bookmarks", bookmarks_read())

    async def bookmarks_private():
        return await refused(bob["xep_0060"].get_items(f"alice@{DOMAIN}", BOOKMARKS, timeout=10))
    await expect_error("bookmarks are private: bob gets not-allowed/closed-node", bookmarks_private(), "not-allowed/closed-node")

    # XEP-0402 §5.3 compatibility: a legacy client (XEP-0048 in XEP-0049
    # private XML) and a native one see the same bookmarks.
    legacy = await connect("alice", "legacy", extra=("xep_0048",))
    legacy_room = f"legacy@conference.{DOMAIN}"

    async def legacy_to_native():
        current = await legacy["xep_0048"].get_bookmarks(method="xep_0049", timeout=10)
        rooms = [c["jid"] for c in current["private"]["bookmarks"]["conferences"]]
        if rooms != [slixmpp.JID(room)]:
            raise AssertionError(f"the legacy client reads {rooms}")
        marks = legacy["xep_0048"].stanza.Bookmarks()
        marks.add_conference(room, "alice", name="Interop", autojoin=True)
        marks.add_conference(legacy_room, "alice", name="Legacy", autojoin=False)
        await legacy["xep_0048"].set_bookmarks(marks, method="xep_0049", timeout=10)
        m = await alice2.next_event(BOOKMARKS, lambda m: m["pubsub_event"]["items"]["item"]["id"] == legacy_room)
        iq = await alice2["xep_0060"].get_items(f"alice@{DOMAIN}", BOOKMARKS, timeout=10)
        return sorted(i["id"] for i in iq["pubsub"]["items"]) == sorted([room, legacy_room]) and m is not None
    await step("the legacy client reads the native bookmark, and its own reaches the native client as an event", legacy_to_native())

    async def precondition():
        return await refused(alice["xep_0060"].publish(None, BOOKMARKS, id="other@conference." + DOMAIN,
                                                        payload=ET.fromstring(f"<conference xmlns='{BOOKMARKS}'/>"),
                                                        options=options(alice, access_model="open"), timeout=10))
    await expect_error("publish-options that contradict the node: conflict/precondition-not-met", precondition(),
                       "conflict/precondition-not-met")

    # OMEMO prerequisites: open device lists and bundles.
    async def omemo_publish():
        devices = ET.fromstring("<list xmlns='eu.siacs.conversations.axolotl'><device id='4223'/></list>")
        bundle = ET.fromstring("<bundle xmlns='eu.siacs.conversations.axolotl'><signedPreKeyPublic signedPreKeyId='1'>AAAA</signedPreKeyPublic>"
                               "<signedPreKeySignature>BBBB</signedPreKeySignature><identityKey>CCCC</identityKey>"
                               "<prekeys><preKeyPublic preKeyId='1'>DDDD</preKeyPublic></prekeys></bundle>")
        devices2 = ET.fromstring("<devices xmlns='urn:xmpp:omemo:2'><device id='4223'/></devices>")
        bundle2 = ET.fromstring("<bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>AAAA</spk><spks>BBBB</spks><ik>CCCC</ik>"
                                "<prekeys><pk id='1'>DDDD</pk></prekeys></bundle>")
        for node, item, payload, extra in ((OMEMO_DEVICES, "current", devices, {}),
                                           (OMEMO_BUNDLE, "current", bundle, {}),
                                           (OMEMO2_DEVICES, "current", devices2, {}),
                                           (OMEMO2_BUNDLES, "4223", bundle2, {"max_items": "max"})):
            await alice["xep_0060"].publish(None, node, id=item, payload=payload, timeout=10,
                                            options=options(alice, access_model="open", **extra))
        return True
    await step("alice publishes OMEMO device lists and bundles with the open access model", omemo_publish())

    dave = await connect("dave", "phone")

    async def omemo_fetch():
        got = {}
        for node in (OMEMO_DEVICES, OMEMO_BUNDLE, OMEMO2_DEVICES, OMEMO2_BUNDLES):
            iq = await dave["xep_0060"].get_items(f"alice@{DOMAIN}", node, timeout=10)
            got[node] = [i["id"] for i in iq["pubsub"]["items"]]
        return got == {OMEMO_DEVICES: ["current"], OMEMO_BUNDLE: ["current"], OMEMO2_DEVICES: ["current"], OMEMO2_BUNDLES: ["4223"]}
    await step("dave, not a contact, fetches the device lists and bundles", omemo_fetch())

    async def stranger_avatar():
        return await refused(dave["xep_0060"].get_items(f"alice@{DOMAIN}", AVATAR_META, timeout=10))
    await expect_error("dave may not read the presence-access avatar: not-authorized/presence-subscription-required",
                       stranger_avatar(), "not-authorized/presence-subscription-required")

    for c in (alice, alice2, legacy, bob, dave):
        c.disconnect()


sys.exit(common.run_main(main, 150, report))
