"""XEP-0357 against Parley with slixmpp: a ComponentXMPP on Parley's XEP-0114
port plays the app server; alice enables push with a publish-options form and
goes offline; bob's message to her makes Parley publish a notification to the
component (summary form, message count, publish-options); the component
answers the second one with an error, after which Parley sends no more.
Prints PASS/FAIL lines; used by interop/push.sh.

usage: push_slixmpp.py IP C2S_PORT COMPONENT_PORT DOMAIN COMPONENT SECRET PASSWORD
"""
import asyncio
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import common
from common import wait

IP, C2S_PORT, COMP_PORT, DOMAIN, COMPONENT, SECRET, PASSWORD = (
    sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7])
NS_PUSH = "urn:xmpp:push:0"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_DATA = "jabber:x:data"
report = common.Report()


class AppServer(slixmpp.ComponentXMPP):
    """Collects notifications; answers each with result, or with an error
    once `refuse` is set."""

    def __init__(self):
        super().__init__(COMPONENT, SECRET, IP, COMP_PORT)
        self.ready = asyncio.get_event_loop().create_future()
        self.notifications = asyncio.Queue()
        self.refuse = False
        self.add_event_handler("session_start", lambda _: self.ready.done() or self.ready.set_result("up"))
        self.register_handler(Callback("push", MatchXPath("{%s}iq/{%s}pubsub" % (self.default_ns, NS_PUBSUB)), self._on_iq))

    def _on_iq(self, iq):
        xml = iq.xml
        ps = xml.find("{%s}pubsub" % NS_PUBSUB)
        pub = ps.find("{%s}publish" % NS_PUBSUB)
        fields = {}
        form = pub.find("{%s}item/{%s}notification/{%s}x" % (NS_PUBSUB, NS_PUSH, NS_DATA)) if pub is not None else None
        if form is not None:
            for f in form.findall("{%s}field" % NS_DATA):
                fields[f.get("var")] = f.findtext("{%s}value" % NS_DATA)
        opts = ps.find("{%s}publish-options/{%s}x" % (NS_PUBSUB, NS_DATA))
        options = {}
        if opts is not None:
            for f in opts.findall("{%s}field" % NS_DATA):
                options[f.get("var")] = f.findtext("{%s}value" % NS_DATA)
        self.notifications.put_nowait({"from": str(iq["from"]), "node": pub.get("node") if pub is not None else None,
                                       "fields": fields, "options": options})
        if self.refuse:
            # Raw, because slixmpp puts the <error/> child of a component's
            # reply in jabber:client, which is not the stream's namespace,
            # and Parley refuses such an IQ error as malformed.
            self.send_raw(
                f"<iq type='error' id='{iq['id']}' from='{COMPONENT}' to='{iq['from']}'>"
                "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
        else:
            iq.reply().send()


class Client(common.Client):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/interop", PASSWORD, plugins=("xep_0030",))

    async def on_start(self):
        pass  # alice never becomes available: her messages go offline


async def next_notification(app, timeout=10):
    try:
        return await asyncio.wait_for(app.notifications.get(), timeout)
    except asyncio.TimeoutError:
        return None


async def main():
    app = AppServer()
    app.connect()
    r = await wait(app.ready, 10)
    report("app server (slixmpp ComponentXMPP) connects", r == "up", r)
    if r != "up":
        return

    alice, bob = Client("alice"), Client("bob")
    for c in (alice, bob):
        if not await common.login(c, IP, C2S_PORT):
            report(f"{c.boundjid.user} logs in", False)
            return

    info = await alice["xep_0030"].get_info(jid=f"alice@{DOMAIN}", timeout=10)
    report("account disco#info announces urn:xmpp:push:0", NS_PUSH in info["disco_info"]["features"])

    iq = alice.make_iq_set()
    iq.set_payload(ET.fromstring(
        f"<enable xmlns='{NS_PUSH}' jid='{COMPONENT}' node='alice-device'>"
        f"<x xmlns='{NS_DATA}' type='submit'>"
        "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
        "<field var='secret'><value>device-secret</value></field></x></enable>"))
    try:
        res = await iq.send(timeout=10)
        report("enable is accepted", res["type"] == "result")
    except Exception as e:  # noqa: BLE001
        report("enable is accepted", False, repr(e))
        return

    bob.send_message(mto=f"alice@{DOMAIN}", mbody="wake up", mtype="chat")
    n = await next_notification(app)
    report("a message for alice (no available session) reaches the app server", n is not None)
    if n is None:
        return
    report("notification from alice's bare JID to the registered node",
           n["from"] == f"alice@{DOMAIN}" and n["node"] == "alice-device", str(n))
    report("summary form with message-count 1, nothing else (minimal)",
           n["fields"].get("FORM_TYPE") == "urn:xmpp:push:summary" and n["fields"].get("message-count") == "1"
           and "last-message-body" not in n["fields"], str(n["fields"]))
    report("publish-options carried", n["options"].get("secret") == "device-secret", str(n["options"]))

    app.refuse = True
    bob.send_message(mto=f"alice@{DOMAIN}", mbody="again", mtype="chat")
    n = await next_notification(app)
    report("second message: message-count 2", n is not None and n["fields"].get("message-count") == "2", str(n))
    await asyncio.sleep(1)
    bob.send_message(mto=f"alice@{DOMAIN}", mbody="third", mtype="chat")
    n = await next_notification(app, 3)
    report("after the app server's error the registration is disabled", n is None, str(n))

    iq = alice.make_iq_set()
    iq.set_payload(ET.fromstring(f"<disable xmlns='{NS_PUSH}' jid='{COMPONENT}'/>"))
    try:
        res = await iq.send(timeout=10)
        report("disable is accepted", res["type"] == "result")
    except Exception as e:  # noqa: BLE001
        report("disable is accepted", False, repr(e))
    for c in (alice, bob, app):
        c.disconnect()


if __name__ == "__main__":
    sys.exit(common.run_main(main, 90, report, "push script"))
