"""A real OMEMO exchange over Parley: two accounts that are not contacts
run python-omemo (Debian's python3-omemo with the python3-twomemo and
python3-oldmemo backends) over slixmpp. Each publishes its device lists
and bundles for urn:xmpp:omemo:2 and eu.siacs.conversations.axolotl on
its personal eventing service with the open access model (the library
drives the publications through the callbacks below); the sender fetches
the recipient's device lists and bundles, which only the open access
model allows a non-contact, builds sessions and sends an encrypted
message with each version, which the recipient decrypts; then the
recipient answers over the established session. Prints PASS/FAIL lines;
used by interop/omemo.sh.

usage: omemo_slixmpp.py IP PORT DOMAIN PASSWORD
"""
import asyncio
import logging
import sys
import xml.etree.ElementTree as ET

import omemo
import oldmemo
import oldmemo.etree
import oldmemo.oldmemo
import twomemo
import twomemo.etree
import twomemo.twomemo
from omemo.storage import Just, Nothing
from omemo.types import TrustLevel
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import common

IP, PORT, DOMAIN, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
report = common.Report("omemo ")

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
TWO_DEVICES = "urn:xmpp:omemo:2:devices"
TWO_BUNDLES = "urn:xmpp:omemo:2:bundles"
OLD_DEVICES = "eu.siacs.conversations.axolotl.devicelist"
OLD_BUNDLES = "eu.siacs.conversations.axolotl.bundles:"
NS_SCE = "urn:xmpp:sce:1"
TWO = twomemo.twomemo.NAMESPACE  # urn:xmpp:omemo:2
OLD = oldmemo.oldmemo.NAMESPACE  # eu.siacs.conversations.axolotl


class MemoryStorage(omemo.storage.Storage):
    """python-omemo's key/value storage, in memory: each run is a fresh
    device, which is what the test wants."""

    def __init__(self):
        super().__init__()
        self.data = {}

    async def _load(self, key):
        return Just(self.data[key]) if key in self.data else Nothing()

    async def _store(self, key, value):
        self.data[key] = value

    async def _delete(self, key):
        self.data.pop(key, None)


class Client(common.Client):
    """A slixmpp client whose encrypted messages are queued."""

    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/omemo", PASSWORD,
                         plugins=("xep_0004", "xep_0030", "xep_0060", "xep_0163", "xep_0199"))
        self.encrypted = asyncio.Queue()
        # slixmpp's "message" event needs a <body/>, which urn:xmpp:omemo:2
        # messages do not have: match the <encrypted/> elements instead.
        for ns in (TWO, OLD):
            self.register_handler(Callback(f"OMEMO {ns}", MatchXPath(f"{{jabber:client}}message/{{{ns}}}encrypted"), self._message))

    async def on_start(self):
        self.send_presence()
        await self.get_roster()

    def _message(self, msg):
        for ns in (TWO, OLD):
            el = msg.xml.find(f"{{{ns}}}encrypted")
            if el is not None:
                self.encrypted.put_nowait((ns, msg["from"].bare, el))

    def options(self, **fields):
        """A publish-options form (XEP-0060 §7.1.5)."""
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value=NS_PUBSUB + "#publish-options")
        for k, v in fields.items():
            form.add_field(var="pubsub#" + k, value=v)
        return form

    async def items(self, jid, node, item_id):
        """The payload of one item, None when the node or item does not
        exist."""
        try:
            iq = await self["xep_0060"].get_items(jid, node, item_ids=[item_id], timeout=10)
        except IqError as e:
            if e.iq["error"]["condition"] == "item-not-found":
                return None
            raise
        for item in iq["pubsub"]["items"]:
            for child in item.xml:
                return child
        return None


def session_manager_class(client):
    """python-omemo's SessionManager with its XMPP side (XEP-0384 §5 for
    urn:xmpp:omemo:2, the axolotl nodes for the old version) done with
    the slixmpp client, and blind trust (the test trusts what it
    fetched)."""

    class SessionManager(omemo.SessionManager):
        async def _upload_bundle(self, bundle):
            if bundle.namespace == TWO:
                await client["xep_0060"].publish(None, TWO_BUNDLES, id=str(bundle.device_id),
                                                 payload=twomemo.etree.serialize_bundle(bundle), timeout=10,
                                                 options=client.options(access_model="open", max_items="max"))
            elif bundle.namespace == OLD:
                await client["xep_0060"].publish(None, OLD_BUNDLES + str(bundle.device_id), id="current",
                                                 payload=oldmemo.etree.serialize_bundle(bundle), timeout=10,
                                                 options=client.options(access_model="open"))
            else:
                raise omemo.UnknownNamespace(bundle.namespace)

        async def _download_bundle(self, namespace, bare_jid, device_id):
            if namespace == TWO:
                el = await client.items(bare_jid, TWO_BUNDLES, str(device_id))
                parse = twomemo.etree.parse_bundle
            elif namespace == OLD:
                el = await client.items(bare_jid, OLD_BUNDLES + str(device_id), "current")
                parse = oldmemo.etree.parse_bundle
            else:
                raise omemo.UnknownNamespace(namespace)
            if el is None:
                raise omemo.BundleNotFound(f"{namespace} {bare_jid} {device_id}")
            return parse(el, bare_jid, device_id)

        async def _delete_bundle(self, namespace, device_id):
            if namespace == TWO:
                await client["xep_0060"].retract(None, TWO_BUNDLES, str(device_id), notify=False, timeout=10)
            elif namespace == OLD:
                await client["xep_0060"].delete_node(None, OLD_BUNDLES + str(device_id), timeout=10)

        async def _upload_device_list(self, namespace, device_list):
            if namespace == TWO:
                node, payload = TWO_DEVICES, twomemo.etree.serialize_device_list(device_list)
            elif namespace == OLD:
                node, payload = OLD_DEVICES, oldmemo.etree.serialize_device_list(device_list)
            else:
                raise omemo.UnknownNamespace(namespace)
            await client["xep_0060"].publish(None, node, id="current", payload=payload, timeout=10,
                                             options=client.options(access_model="open"))

        async def _download_device_list(self, namespace, bare_jid):
            if namespace == TWO:
                el = await client.items(bare_jid, TWO_DEVICES, "current")
                return {} if el is None else twomemo.etree.parse_device_list(el)
            if namespace == OLD:
                el = await client.items(bare_jid, OLD_DEVICES, "current")
                return {} if el is None else oldmemo.etree.parse_device_list(el)
            raise omemo.UnknownNamespace(namespace)

        async def _evaluate_custom_trust_level(self, device):
            return TrustLevel.TRUSTED if device.trust_level_name == "blind" else TrustLevel.DISTRUSTED

        async def _make_trust_decision(self, undecided, identifier):
            for d in undecided:
                await self.set_trust(d.bare_jid, d.identity_key, "blind")

        async def _send_message(self, message, bare_jid):
            send(client, message, bare_jid)

    return SessionManager


def send(client, message, bare_jid, body=None):
    """Sends an OMEMO message (an empty one for the library's key
    exchanges, or an encrypted body) to bare_jid."""
    msg = client.make_message(mto=bare_jid, mtype="chat")
    if message.namespace == TWO:
        msg.append(twomemo.etree.serialize_message(message))
    else:
        msg.append(oldmemo.etree.serialize_message(message))
    if body is not None:
        msg["body"] = body
    msg.append(ET.Element("{urn:xmpp:hints}store"))
    msg.send()


def sce_envelope(text):
    """XEP-0420 content of an urn:xmpp:omemo:2 message."""
    env = ET.Element(f"{{{NS_SCE}}}envelope")
    content = ET.SubElement(env, f"{{{NS_SCE}}}content")
    ET.SubElement(content, "{jabber:client}body").text = text
    ET.SubElement(env, f"{{{NS_SCE}}}rpad").text = "interop"
    return ET.tostring(env)


def sce_body(plaintext):
    env = ET.fromstring(plaintext)
    body = env.find(f"{{{NS_SCE}}}content/{{jabber:client}}body")
    return None if body is None else body.text


async def omemo_for(client):
    sm = await session_manager_class(client).create(
        backends=[twomemo.Twomemo(client.storage), oldmemo.Oldmemo(client.storage)],
        storage=client.storage,
        own_bare_jid=client.boundjid.bare,
        initial_own_label="interop",
        undecided_trust_level_name="blind")
    await sm.after_history_sync()
    return sm


async def connect(user):
    c = Client(user)
    c.storage = MemoryStorage()
    if not await common.login(c, IP, PORT):
        raise RuntimeError(f"{user} could not log in")
    return c


async def exchange(sender, sender_sm, recipient, recipient_sm, namespace, text):
    """sender encrypts text for recipient with namespace's OMEMO; returns
    what the recipient decrypted."""
    peer = recipient.boundjid.bare
    for ns in (TWO, OLD):
        await sender_sm.refresh_device_list(ns, peer)
    messages, errors = await sender_sm.encrypt(
        frozenset([peer]),
        {TWO: sce_envelope(text), OLD: text.encode()},
        backend_priority_order=[namespace])
    if errors:
        raise AssertionError(f"encryption errors: {errors}")
    sent = [m for m in messages if m.namespace == namespace]
    if len(sent) != 1:
        raise AssertionError(f"{len(sent)} {namespace} messages (of {[m.namespace for m in messages]})")
    send(sender, sent[0], peer, body="This message is OMEMO encrypted." if namespace == OLD else None)
    while True:
        ns, frm, el = await asyncio.wait_for(recipient.encrypted.get(), 15)
        if ns != namespace or frm != sender.boundjid.bare:
            continue
        if ns == TWO:
            message = twomemo.etree.parse_message(el, frm)
        else:
            message = await oldmemo.etree.parse_message(el, frm, peer, recipient_sm)
        plaintext, _, _ = await recipient_sm.decrypt(message)
        if plaintext is None:
            continue  # an empty message of the protocol (key exchange)
        return sce_body(plaintext) if ns == TWO else plaintext.decode()


async def main():
    logging.getLogger("omemo").setLevel(logging.WARNING)
    alice = await connect("alice")
    bob = await connect("bob")

    sms = {}

    async def setup():
        sms["alice"] = await omemo_for(alice)
        sms["bob"] = await omemo_for(bob)
        return True
    await common.step(report, "alice and bob publish OMEMO device lists and bundles (both versions, open access)", setup())
    if len(sms) != 2:
        return

    async def nodes_open():
        # bob is no contact of alice's: only the open access model lets
        # him read her device lists and a bundle.
        got = []
        for node in (TWO_DEVICES, OLD_DEVICES):
            got.append(await bob.items(alice.boundjid.bare, node, "current") is not None)
        own = await sms["alice"].get_own_device_information()
        device_id = own[0].device_id
        got.append(await bob.items(alice.boundjid.bare, TWO_BUNDLES, str(device_id)) is not None)
        got.append(await bob.items(alice.boundjid.bare, OLD_BUNDLES + str(device_id), "current") is not None)
        return all(got)
    await common.step(report, "bob, not a contact, reads alice's device lists and bundles", nodes_open())

    for ns, text in ((TWO, "hello over OMEMO 2"), (OLD, "hello over legacy OMEMO")):
        async def one(ns=ns, text=text):
            got = await exchange(alice, sms["alice"], bob, sms["bob"], ns, text)
            if got != text:
                raise AssertionError(f"bob decrypted {got!r}")
            return True
        await common.step(report, f"alice sends bob a {ns} message that bob decrypts", one())

    async def reply():
        got = await exchange(bob, sms["bob"], alice, sms["alice"], TWO, "and back")
        if got != "and back":
            raise AssertionError(f"alice decrypted {got!r}")
        return True
    await common.step(report, "bob answers over the established urn:xmpp:omemo:2 session", reply())

    for c in (alice, bob):
        c.disconnect()


sys.exit(common.run_main(main, 150, report))
