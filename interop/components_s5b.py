"""Two slixmpp clients transfer a file through Parley's XEP-0065 proxy.

The sender discovers the proxy the way clients do (disco#items of its server,
disco#info of each item for proxy/bytestreams, the streamhost query), offers
it as the only streamhost, and activates the stream; the receiver connects to
the proxy, reads until the sender closes, and both SHA-256 digests must match.
Prints PASS/FAIL lines; used by interop/components.sh.

usage: components_s5b.py IP PORT DOMAIN PROXY_JID SIZE_BYTES
"""
import asyncio
import hashlib
import os
import sys

import slixmpp

import common

IP, PORT, DOMAIN, PROXY, SIZE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
PASSWORD = "interop-secret-1"
report = common.Report()


class Client(common.Client):
    def __init__(self, user, resource):
        super().__init__(f"{user}@{DOMAIN}/{resource}", PASSWORD, plugins=("xep_0030", "xep_0065"),
                         plugin_config={"xep_0065": {"auto_accept": True}})


async def main():
    payload = os.urandom(SIZE)
    sent_digest = hashlib.sha256(payload).hexdigest()

    sender, receiver = Client("sender", "send"), Client("receiver", "recv")
    received = bytearray()
    closed = asyncio.get_event_loop().create_future()
    receiver.add_event_handler("socks5_data", lambda data: received.extend(data))
    receiver.add_event_handler("socks5_closed", lambda _: closed.done() or closed.set_result(True))
    for c in (sender, receiver):
        c.connect(address=(IP, PORT))
    try:
        ok = await asyncio.wait_for(asyncio.gather(sender.started, receiver.started), 20)
    except asyncio.TimeoutError:
        ok = [False]
    report("both clients log in", all(ok))
    if not all(ok):
        return

    try:
        proxies = await asyncio.wait_for(sender["xep_0065"].discover_proxies(timeout=10), 15)
    except Exception as e:  # noqa: BLE001 - any failure is a FAIL line
        proxies = {}
        report("sender discovers the proxy via disco", False, repr(e))
    found = PROXY in {str(j) for j in proxies}
    if proxies:
        report("sender discovers the proxy via disco (proxy/bytestreams + streamhost)", found, str(proxies))
    if not found:
        return
    host, port = proxies[slixmpp.JID(PROXY)] if slixmpp.JID(PROXY) in proxies else list(proxies.values())[0]
    report("streamhost is the proxy's IP address", str(host) == IP, f"{host}:{port}")
    # Use Parley's proxy as the only streamhost.
    sender["xep_0065"]._proxies = {slixmpp.JID(PROXY): (host, port)}

    try:
        sock = await asyncio.wait_for(sender["xep_0065"].handshake(receiver.boundjid.full, timeout=10), 20)
    except Exception as e:  # noqa: BLE001
        sock = None
        report("bytestream negotiated and activated through the proxy", False, repr(e))
    if sock is None:
        if not report.results or report.results[-1]:
            report("bytestream negotiated and activated through the proxy", False, "no socket")
        return
    report("bytestream negotiated and activated through the proxy", True)

    for i in range(0, len(payload), 64 * 1024):
        await sock.write(payload[i:i + 64 * 1024])
    sock.transport.close()  # Socks5Protocol has no close(); end of file for the receiver
    try:
        await asyncio.wait_for(closed, 60)
    except asyncio.TimeoutError:
        pass
    got_digest = hashlib.sha256(bytes(received)).hexdigest()
    report(f"receiver got {len(received)} of {SIZE} bytes", len(received) == SIZE)
    report("receiver's SHA-256 matches the sender's", got_digest == sent_digest, f"{got_digest} != {sent_digest}")
    print(f"sha256 sent={sent_digest} received={got_digest}", flush=True)
    for c in (sender, receiver):
        c.disconnect()


if __name__ == "__main__":
    sys.exit(common.run_main(main, 120, report, "transfer script"))
