"""slixmpp client for interop/auth.sh: one login, then a ping round trip.

usage: auth_slixmpp.py MODE JID PASSWORD HOST PORT [CERTFILE KEYFILE]
MODE: legacy (XEP-0078 jabber:iq:auth via slixmpp's xep_0078 plugin) or
external (SASL EXTERNAL with a client certificate, XEP-0178).
Prints "OK <bound jid> <how>" or "ERR <reason>"; exit status 0 on OK.
"""
import asyncio
import logging
import sys

from slixmpp import ClientXMPP

import common


def main():
    mode, jid, password, host, port = sys.argv[1:6]
    if len(sys.argv) > 7:
        certfile, keyfile = sys.argv[6], sys.argv[7]
    else:
        certfile = keyfile = None
    if "-v" in sys.argv:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    x = ClientXMPP(jid, password)
    x.register_plugin("xep_0199")
    common.accept_self_signed(x)
    result = {}
    if mode == "legacy":
        x.register_plugin("xep_0078")
        legacy = x.plugin["xep_0078"]

        # slixmpp only uses jabber:iq:auth when the server offers no SASL
        # mechanisms; Parley offers both on a 1.0 stream (XEP-0078 §4), so
        # this client prefers the iq-auth feature explicitly and never
        # tries SASL.
        # slixmpp 1.8.3's xep_0078 authenticate() calls iq.send()
        # synchronously and subscripts the returned Future (TypeError), and
        # slixmpp holds back every IQ but bind/session until a session
        # exists, so the plugin cannot complete against any server. This
        # runs the plugin's exact steps (its jabber:iq:auth stanza, digest
        # when offered, else plaintext) with the sends awaited and let
        # through.
        async def iq_auth():
            x._always_send_everything = True
            try:
                await iq_auth_steps()
            finally:
                x._always_send_everything = False

        async def iq_auth_steps():
            import hashlib
            import uuid
            from slixmpp import JID
            get = x.Iq()
            get["type"] = "get"
            get["to"] = x.requested_jid.host
            get["auth"]["username"] = x.requested_jid.user
            try:
                resp = await get.send(timeout=8)
                res = x.requested_jid.resource or str(uuid.uuid4())
                st = x.Iq()
                st["type"] = "set"
                st["auth"]["username"] = x.requested_jid.user
                st["auth"]["resource"] = res
                if "digest" in resp["auth"]["fields"]:
                    st["auth"]["digest"] = hashlib.sha1((x.stream_id + x.password).encode()).hexdigest()
                    result["how"] = "jabber:iq:auth digest"
                else:
                    st["auth"]["password"] = x.password
                    result["how"] = "jabber:iq:auth plaintext"
                await st.send(timeout=8)
            except Exception as e:  # noqa: BLE001 - IqError, IqTimeout
                result["err"] = "iq:auth: %r" % (e,)
                x.event("failed_auth")
                return
            x.features.add("auth")
            x.authenticated = True
            x.boundjid = JID(x.requested_jid)
            x.boundjid.resource = res
            x.event("session_bind", x.boundjid)
            x.sessionstarted = True
            x.event("session_start")

        async def use_iq_auth(features):
            await iq_auth()
            return True

        x.unregister_feature("auth", legacy.order)
        x.unregister_feature("mechanisms", 100)
        x.register_feature("auth", use_iq_auth, restart=False, order=legacy.order)
    else:
        x.certfile, x.keyfile = certfile, keyfile
        x["feature_mechanisms"].use_mechs = {"EXTERNAL"}
        x.add_event_handler("auth_success", lambda _: result.setdefault("how", "SASL EXTERNAL"))

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
        print("OK", result["ok"], result.get("how", "?"))
        return 0
    print("ERR", result.get("err", "no session"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
