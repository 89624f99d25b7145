"""slixmpp client for interop/kerberos.sh: one SASL login with a chosen
mechanism, then a ping round trip. With GSSAPI, slixmpp's mechanism runs
the MIT Kerberos library through pykerberos (python3-kerberos) with the
ticket cache that KRB5CCNAME names: no password is involved.

usage: kerberos_slixmpp.py MECH JID PASSWORD HOST PORT
Prints "OK <bound jid>" or "ERR <reason>"; exit status 0 on OK.
"""
import asyncio
import logging
import sys

from slixmpp import ClientXMPP

import common


def main():
    mech, jid, password, host, port = sys.argv[1:6]
    if "-v" in sys.argv:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    x = ClientXMPP(jid, password, sasl_mech=mech)
    x.register_plugin("xep_0199")
    common.accept_self_signed(x)
    # slixmpp takes the GSSAPI service name (xmpp@<host>) from the SRV
    # record it connected through; connecting to an address leaves it
    # empty (MIT would then ask for xmpp/<this machine>), so name the
    # domain, as a client that resolved it would.
    x.credentials["service-name"] = x.boundjid.domain
    if mech.startswith("SCRAM"):
        common.withhold_channel_binding(x)
    result = {}
    done = asyncio.get_event_loop().create_future()

    async def start(_):
        try:
            await x["xep_0199"].ping(jid=x.boundjid.host, timeout=8)
            result["ok"] = str(x.boundjid)
        except Exception as e:  # noqa: BLE001 - report any failure
            result["err"] = "ping: %r" % (e,)
        x.disconnect()

    def failed(_):
        result.setdefault("err", "authentication failed")
        x.disconnect()

    x.add_event_handler("session_start", start)
    x.add_event_handler("failed_auth", failed)
    x.add_event_handler("disconnected", lambda _: done.done() or done.set_result(True))
    x.connect(address=(host, int(port)))
    try:
        asyncio.get_event_loop().run_until_complete(asyncio.wait_for(done, 20))
    except asyncio.TimeoutError:
        result.setdefault("err", "timeout")
    if "ok" in result:
        print("OK", result["ok"])
        return 0
    print("ERR", result.get("err", "no session"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
