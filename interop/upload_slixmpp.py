"""slixmpp (xep_0363) against Parley's XEP-0363 HTTP File Upload service and
its HTTPS listener: discover the service and its max-file-size, request a
slot, PUT a file with the slot's headers, GET it back with the same SHA-256
(also as another user), a second PUT refused (409), a file too large refused
with <file-too-large/>, slixmpp's own upload_file end to end, and the
XEP-0156 host-meta documents. Prints PASS/FAIL lines; used by
interop/upload.sh.

The server's certificate is self-signed and the URLs name an IP, so every
HTTPS request here skips certificate verification.

usage: upload_slixmpp.py IP PORT DOMAIN PASSWORD HTTPS_BASE
"""
import hashlib
import io
import json
import os
import sys
import xml.etree.ElementTree as ET

import aiohttp
import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0363 import http_upload

import common

IP, PORT, DOMAIN, PASSWORD, BASE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
SERVICE = f"upload.{DOMAIN}"
report = common.Report("slixmpp upload ")


def session(**kw):
    """An aiohttp session that accepts the self-signed certificate."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False), **kw)


async def connect(user):
    c = common.Client(f"{user}@{DOMAIN}/upload", PASSWORD, plugins=("xep_0004", "xep_0030", "xep_0128", "xep_0363"))
    if not await common.login(c, IP, PORT):
        raise RuntimeError(f"{user} could not log in")
    return c


def step(name, coro, **kw):
    return common.step(report, name, coro, **kw)


async def main():
    alice, bob = await connect("alice"), await connect("bob")
    up = alice["xep_0363"]
    data = os.urandom(2 * 1024 * 1024 + 17)
    digest = hashlib.sha256(data).hexdigest()

    async def discover():
        # slixmpp 1.8.3's find_upload_service hands asyncio.wait bare
        # coroutines, which Python 3.11 refuses; the same discovery by hand:
        # the server's items, then the service's info and form.
        items = await alice["xep_0030"].get_items(jid=DOMAIN, timeout=10)
        if SERVICE not in [str(i[0]) for i in items["disco_items"]["items"]]:
            return False
        info = (await alice["xep_0030"].get_info(jid=SERVICE, timeout=10))["disco_info"]
        if ("store", "file") not in [(i[0], i[1]) for i in info["identities"]] or "urn:xmpp:http:upload:0" not in info["features"]:
            return False
        for form in info.iterables:
            if form["values"].get("FORM_TYPE") == ["urn:xmpp:http:upload:0"]:
                up.upload_service, up.max_file_size = slixmpp.JID(SERVICE), int(form["values"]["max-file-size"])
                return up.max_file_size == 10 * 1024 * 1024
        return False
    await step("finds upload.<domain> in disco, identity store/file and max-file-size (10 MiB)", discover())

    slot = await step("gets a slot for 2 MiB", up.request_slot(SERVICE, "interop test.bin", len(data), "application/octet-stream", timeout=10))
    if slot is None:
        return
    s = slot["http_upload_slot"]
    put_url, get_url = s["put"]["url"], s["get"]["url"]
    headers = {h["name"]: h["value"] for h in s["put"]["headers"]}
    report("the slot's URLs are https under the public URL", put_url.startswith(BASE + "/upload/") and get_url == put_url, put_url)
    report("the PUT carries an Authorization header", headers.get("Authorization", "").startswith("Bearer "), str(headers))

    async def put(body, hdrs=headers):
        async with session() as http:
            async with http.put(put_url, data=body, headers={"Content-Type": "application/octet-stream", **hdrs}) as r:
                return r.status

    await step("PUT with the slot's headers: 201", put(data), ok=lambda st: st == 201, detail=str)

    async def get():
        async with session() as http:
            async with http.get(get_url) as r:
                body = await r.read()
                return r.status, hashlib.sha256(body).hexdigest(), r.headers
    got = await step("GET returns the same SHA-256", get(), ok=lambda r: r[0] == 200 and r[1] == digest,
                     detail=lambda r: f"status {r[0]}")
    if got:
        h = got[2]
        report("GET headers: type, nosniff, CSP, attachment for a binary",
               h.get("Content-Type") == "application/octet-stream" and h.get("X-Content-Type-Options") == "nosniff"
               and "default-src 'none'" in h.get("Content-Security-Policy", "")
               and h.get("Content-Disposition", "").startswith("attachment"), str(dict(h)))
    await step("bob GETs the same file with the URL alone", get(), ok=lambda r: r[0] == 200 and r[1] == digest,
               detail=lambda r: f"status {r[0]}")
    await step("the same slot a second time: 409", put(data), ok=lambda st: st == 409, detail=str)
    await step("a PUT without the slot's token: 401", put(data, {}), ok=lambda st: st == 401, detail=str)

    async def too_large():
        try:
            await up.request_slot(SERVICE, "huge.bin", 11 * 1024 * 1024, timeout=10)
        except IqError as e:
            err = e.iq.xml.find("{jabber:client}error")
            ftl = err.find("{urn:xmpp:http:upload:0}file-too-large") if err is not None else None
            return (e.iq["error"]["condition"] == "not-acceptable" and ftl is not None
                    and ftl.findtext("{urn:xmpp:http:upload:0}max-file-size") == str(10 * 1024 * 1024))
        return False
    await step("a slot for 11 MiB: not-acceptable with <file-too-large/>", too_large())

    async def upload_file():
        # slixmpp's own helper (the service found above, so it skips its
        # broken discovery), with its HTTP session made to accept the
        # self-signed certificate (it has no option for that).
        orig = http_upload.ClientSession
        http_upload.ClientSession = lambda **kw: aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False), **kw)
        try:
            small = b"hello from slixmpp's upload_file\n"
            url = await up.upload_file("note.txt", size=len(small), input_file=io.BytesIO(small), timeout=10)
        finally:
            http_upload.ClientSession = orig
        async with session() as http:
            async with http.get(url) as r:
                return r.status == 200 and await r.read() == small and r.headers.get("Content-Type") == "text/plain"
    await step("slixmpp's upload_file, then GET", upload_file())

    async def host_meta():
        async with session() as http:
            async with http.get(BASE + "/.well-known/host-meta", headers={"Host": DOMAIN}) as r:
                xrd = ET.fromstring(await r.read())
                cors = r.headers.get("Access-Control-Allow-Origin")
            async with http.get(BASE + "/.well-known/host-meta.json", headers={"Host": DOMAIN}) as r:
                js = json.loads(await r.read())
        ns = "{http://docs.oasis-open.org/ns/xri/xrd-1.0}"
        links = {l.get("rel"): l.get("href") for l in xrd.findall(ns + "Link")}
        jlinks = {l["rel"]: l["href"] for l in js["links"]}
        want = {"urn:xmpp:alt-connections:websocket": "wss" + BASE[len("https"):] + "/xmpp-websocket",
                "urn:xmpp:alt-connections:xbosh": BASE + "/http-bind"}
        return cors == "*" and links == want and jlinks == want
    await step("host-meta (XRD and JSON) lists WebSocket and BOSH, with CORS", host_meta())

    for c in (alice, bob):
        c.disconnect()


if __name__ == "__main__":
    sys.exit(common.run_main(main, 90, report))
