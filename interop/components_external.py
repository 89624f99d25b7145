"""A slixmpp ComponentXMPP connects to Parley's XEP-0114 port and answers a
client's disco#info query; the client also finds the component in its
server's disco#items. A wrong secret must be refused. Prints PASS/FAIL lines;
used by interop/components.sh.

usage: components_external.py IP C2S_PORT COMPONENT_PORT DOMAIN COMPONENT SECRET
"""
import asyncio
import sys

import slixmpp

import common
from common import wait

IP, C2S_PORT, COMP_PORT, DOMAIN, COMPONENT, SECRET = (
    sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])
report = common.Report()


class Component(slixmpp.ComponentXMPP):
    def __init__(self, secret):
        super().__init__(COMPONENT, secret, IP, COMP_PORT)
        self.register_plugin("xep_0030")
        self["xep_0030"].add_identity(category="gateway", itype="interop", name="Interop Component")
        self["xep_0030"].add_feature("urn:example:interop")
        self.ready = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", lambda _: self.ready.done() or self.ready.set_result("up"))
        self.add_event_handler("disconnected", lambda _: self.ready.done() or self.ready.set_result("disconnected"))
        self.add_event_handler("stream_error", lambda e: self.ready.done() or self.ready.set_result("stream-error:" + e["condition"]))


class Client(common.Client):
    def __init__(self):
        super().__init__(f"asker@{DOMAIN}/c", "interop-secret-1", plugins=("xep_0030",))

    async def on_start(self):
        pass  # no presence, no roster: it only asks disco questions


async def main():
    bad = Component("not-the-secret")
    bad.connect()
    r = await wait(bad.ready, 10)
    report("component with a wrong secret is refused", r != "up", r)
    bad.disconnect()

    comp = Component(SECRET)
    comp.connect()
    r = await wait(comp.ready, 10)
    report("slixmpp ComponentXMPP completes the XEP-0114 handshake", r == "up", r)
    if r != "up":
        return

    client = Client()
    if not await common.login(client, IP, C2S_PORT):
        report("client logs in", False)
        return
    try:
        items = await client["xep_0030"].get_items(jid=DOMAIN, timeout=10)
        jids = {str(i[0]) for i in items["disco_items"]["items"]}
        report("component listed in the server's disco#items", COMPONENT in jids, str(jids))
    except Exception as e:  # noqa: BLE001
        report("component listed in the server's disco#items", False, repr(e))
    try:
        info = await client["xep_0030"].get_info(jid=COMPONENT, timeout=10)
        ids = info["disco_info"]["identities"]
        feats = info["disco_info"]["features"]
        ok = any(i[0] == "gateway" and i[1] == "interop" for i in ids) and "urn:example:interop" in feats
        report("component answers the client's disco#info through Parley", ok, f"{ids} {feats}")
    except Exception as e:  # noqa: BLE001
        report("component answers the client's disco#info through Parley", False, repr(e))
    client.disconnect()
    comp.disconnect()


if __name__ == "__main__":
    sys.exit(common.run_main(main, 90, report, "component script"))
