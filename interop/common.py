"""Shared by the interop client scripts (run with /usr/bin/python3, which sees
Debian's python3-slixmpp): PASS/FAIL reporting, slixmpp clients that accept
the server's self-signed certificate and connect to an IP, and bounded waits.

The scripts in interop/ import it directly (their directory is on sys.path);
interop/federation/scenarios.py adds interop/ to sys.path first.
"""
import asyncio
import logging
import ssl
import sys

import slixmpp


class Report:
    """report(name, ok, detail) prints "PASS: <prefix>name" or
    "FAIL: <prefix>name (detail)" and remembers the outcome."""

    def __init__(self, prefix=""):
        self.prefix = prefix
        self.results = []

    def __call__(self, name, ok, detail=""):
        self.results.append(bool(ok))
        print(("PASS" if ok else "FAIL") + ": " + self.prefix + name
              + (f" ({detail})" if detail and not ok else ""), flush=True)

    @property
    def failures(self):
        return self.results.count(False)


def accept_self_signed(client):
    """The server's certificate is self-signed and for its domain, while the
    client connects to an IP: accept it (slixmpp's default context is
    ssl.create_default_context(), made lenient here)."""
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE


def withhold_channel_binding(client):
    """slixmpp 1.8.3 hands SCRAM the TLS 'tls-unique' binding whenever
    the socket has one, so a non-PLUS SCRAM mechanism starts with the
    GS2 flag 'y' ("I support channel binding, you don't seem to"). A
    server that offers -PLUS (Parley does, with tls-exporter and
    tls-server-end-point, XEP-0440) must then fail the exchange as a
    possible downgrade (RFC 5802 §6); interop/scenarios.py checks that
    Parley does. To test plain SCRAM the binding is withheld, so slixmpp
    sends 'n'."""
    fm = client["feature_mechanisms"]
    default = fm.sasl_callback

    def creds(required, optional):
        values = default(required, optional)
        if "channel_binding" in values:
            values["channel_binding"] = None
        return values
    fm.sasl_callback = creds


def mechanism_config(mech, **plugin_config):
    """plugin_config with only mechanism mech, never PLAIN unencrypted."""
    return {"feature_mechanisms": {"use_mech": mech, "unencrypted_plain": False},
            **plugin_config}


class Client(slixmpp.ClientXMPP):
    """A client with one SASL mechanism (the binding withheld), the listed
    plugins, lenient TLS, and a future `started` that is True at session
    start (after on_start) and False when authentication fails."""

    def __init__(self, jid, password, mech="SCRAM-SHA-256", plugins=(), plugin_config=None):
        super().__init__(jid, password, plugin_config=mechanism_config(mech, **(plugin_config or {})))
        withhold_channel_binding(self)
        accept_self_signed(self)
        for p in plugins:
            self.register_plugin(p)
        self.started = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._session_start)
        self.add_event_handler("failed_auth", lambda _: self.started.done() or self.started.set_result(False))

    async def on_start(self):
        """Runs at session start, before `started` is set: presence, then
        the roster."""
        self.send_presence()
        await self.get_roster()

    async def _session_start(self, _):
        await self.on_start()
        if not self.started.done():
            self.started.set_result(True)


async def login(client, ip, port, timeout=20):
    """Connect client to ip:port and wait for `started`; True on a session,
    False on failed authentication or timeout."""
    client.connect(address=(ip, int(port)))
    try:
        return await asyncio.wait_for(client.started, timeout)
    except asyncio.TimeoutError:
        return False


async def wait(fut, timeout):
    """fut's result, or "timeout" after timeout seconds."""
    try:
        return await asyncio.wait_for(fut, timeout)
    except asyncio.TimeoutError:
        return "timeout"


async def step(report, name, coro, ok=lambda r: r is not False, detail=lambda r: ""):
    """Await coro as one check: ok(result) decides PASS; an exception is a
    FAIL line naming it. Returns the result (None on an exception)."""
    try:
        r = await coro
        report(name, ok(r), detail(r))
        return r
    except Exception as e:  # noqa: BLE001 - any failure is a FAIL line
        report(name, False, f"{type(e).__name__}: {e}")
        return None


def run_main(main, timeout, report, name="run"):
    """Run the script's async main() within timeout seconds (slixmpp's debug
    log on stderr with -v); an exception is a FAIL line called name. Returns
    the exit status: 0 when something was checked and nothing failed."""
    logging.basicConfig(level=logging.DEBUG if "-v" in sys.argv else logging.ERROR, stream=sys.stderr)
    try:
        asyncio.run(asyncio.wait_for(main(), timeout))
    except Exception as e:  # noqa: BLE001 - any failure is a FAIL line
        report(name, False, f"{type(e).__name__}: {e}")
    return 0 if report.results and not report.failures else 1
