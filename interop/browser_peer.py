#!/usr/bin/env python3
"""The slixmpp side of interop/browser.sh: bob stays online (at most
SECONDS, less once every transport named was heard) and answers every
"hello from converse over X" with "reply to converse over X", so the
browser test sees a round trip. Reports which transports it heard from.

    browser_peer.py IP PORT DOMAIN PASSWORD SECONDS [bosh]"""
import asyncio
import sys

from common import Client, Report, login, run_main

IP, PORT, DOMAIN, PASSWORD, SECONDS = sys.argv[1:6]
report = Report("slixmpp browser-peer ")


async def main():
    bob = Client(f"bob@{DOMAIN}/desk", PASSWORD)
    heard = []

    def on_message(msg):
        body = msg["body"] or ""
        if msg["type"] in ("chat", "normal") and body.startswith("hello from converse over "):
            transport = body.rsplit(" ", 1)[-1]
            heard.append(transport)
            bob.send_message(mto=msg["from"], mbody=f"reply to converse over {transport}", mtype="chat")
    bob.add_event_handler("message", on_message)
    report("bob logs in", await login(bob, IP, PORT))
    print("READY", flush=True)
    want = {"websocket"} | ({"bosh"} if "bosh" in sys.argv[6:] else set())
    for _ in range(int(float(SECONDS) * 10)):  # until every transport was heard
        if want <= set(heard):
            await asyncio.sleep(1)  # let the last reply go out
            break
        await asyncio.sleep(0.1)
    report("bob heard converse over websocket", "websocket" in heard, f"heard {heard}")
    if "bosh" in sys.argv[6:]:
        report("bob heard converse over bosh", "bosh" in heard, f"heard {heard}")
    bob.disconnect()


sys.exit(run_main(main, float(SECONDS) + 40, report))
