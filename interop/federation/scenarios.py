#!/usr/bin/python3
"""Federation interop: a slixmpp user on Parley and one on a peer server.

Run by interop/federation.sh. Prints "PASS name" / "FAIL name: why" lines;
exit status non-zero if anything failed.
"""
import argparse
import asyncio
import os
import sys
import xml.etree.ElementTree as ET

from slixmpp import ClientXMPP

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import common  # noqa: E402 - interop/common.py, found through the line above

STEP = 8.0  # every federated step takes well under a second when it works


def client(jid, password, ip, port, mech):
    # One explicit mechanism: slixmpp's -PLUS variants do not agree with
    # every server on channel binding.
    c = ClientXMPP(jid, password, plugin_config=common.mechanism_config(mech))
    common.accept_self_signed(c)
    # slixmpp 1.8.3 would send the GS2 'y' flag with non-PLUS SCRAM, which a
    # server offering -PLUS must refuse (see common.withhold_channel_binding).
    common.withhold_channel_binding(c)
    c.register_plugin('xep_0030')
    c.register_plugin('xep_0092')
    c.register_plugin('xep_0045')
    c.register_plugin('xep_0054')
    c.register_plugin('xep_0199')
    c.roster.auto_authorize = True
    c.roster.auto_subscribe = True
    c.inbox = asyncio.Queue()
    c.presences = asyncio.Queue()
    c.add_event_handler('message', lambda m: c.inbox.put_nowait(m) if m['type'] in ('chat', 'normal') else None)
    c.add_event_handler('presence_available', lambda p: c.presences.put_nowait(p))
    c.connect_addr = (ip, port)
    return c


async def online(c):
    ev = asyncio.Event()
    c.add_event_handler('session_start', lambda _: ev.set())
    c.connect(address=c.connect_addr)
    await asyncio.wait_for(ev.wait(), STEP)
    c.send_presence()
    await c.get_roster()


async def wait_presence(c, bare):
    while True:
        p = await asyncio.wait_for(c.presences.get(), STEP)
        if p['from'].bare == bare:
            return p


async def wait_message(c, body):
    while True:
        m = await asyncio.wait_for(c.inbox.get(), STEP)
        if m['body'] == body:
            return m


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--parley', required=True)       # ip:port
    ap.add_argument('--peer', required=True)         # ip:port
    ap.add_argument('--parley-domain', required=True)
    ap.add_argument('--peer-domain', required=True)
    ap.add_argument('--muc', required=True)
    ap.add_argument('--password', required=True)
    a = ap.parse_args()
    pip, pport = a.parley.split(':')
    qip, qport = a.peer.split(':')
    alice = client('alice@%s/interop' % a.parley_domain, a.password, pip, int(pport), 'SCRAM-SHA-256')
    bob = client('bob@%s/interop' % a.peer_domain, a.password, qip, int(qport), 'SCRAM-SHA-1')
    failed = 0

    async def step(name, coro):
        nonlocal failed
        try:
            await coro
            print('PASS', name, flush=True)
            return True
        except Exception as e:  # noqa: BLE001 - report anything
            failed += 1
            print('FAIL %s: %r' % (name, e), flush=True)
            return False

    if not await step('both users online', asyncio.gather(online(alice), online(bob))):
        print('FAIL remaining scenarios skipped')
        return 1
    bob_bare, alice_bare = 'bob@' + a.peer_domain, 'alice@' + a.parley_domain

    async def subscribe():
        alice.send_presence_subscription(pto=bob_bare)
        await wait_presence(alice, bob_bare)
        bob.send_presence_subscription(pto=alice_bare)
        await wait_presence(bob, alice_bare)
        for _ in range(int(STEP * 10)):
            ia, ib = alice.client_roster[bob_bare], bob.client_roster[alice_bare]
            if ia['subscription'] == 'both' and ib['subscription'] == 'both':
                return
            await asyncio.sleep(0.1)
        raise Exception('subscriptions: alice sees %s, bob sees %s' % (
            alice.client_roster[bob_bare]['subscription'], bob.client_roster[alice_bare]['subscription']))
    await step('subscription both ways and presence', subscribe())

    async def messages():
        alice.send_message(mto=bob_bare, mbody='hello from parley', mtype='chat')
        await wait_message(bob, 'hello from parley')
        bob.send_message(mto=alice.boundjid.full, mbody='hello from the peer', mtype='chat')
        await wait_message(alice, 'hello from the peer')
    await step('messages both ways', messages())

    async def versions():
        r = await alice['xep_0092'].get_version(a.peer_domain, timeout=STEP)
        if not r['software_version']['name']:
            raise Exception('no version from peer: %s' % r)
        r = await bob['xep_0092'].get_version(a.parley_domain, timeout=STEP)
        if not r['software_version']['name']:
            raise Exception('no version from parley: %s' % r)
    await step('version query both ways', versions())

    async def disco():
        r = await alice['xep_0030'].get_info(jid=a.peer_domain, timeout=STEP)
        if not r['disco_info']['features']:
            raise Exception('empty disco from peer')
        r = await bob['xep_0030'].get_info(jid=a.parley_domain, timeout=STEP)
        if not r['disco_info']['features']:
            raise Exception('empty disco from parley')
    await step('disco#info both ways', disco())

    async def muc():
        room = 'interop@' + a.muc
        joined = asyncio.Event()
        alice.add_event_handler('muc::%s::got_online' % room, lambda p: joined.set() if p['muc']['nick'] == 'alice' else None)
        bob_joined = asyncio.Event()
        bob.add_event_handler('muc::%s::got_online' % room, lambda p: bob_joined.set() if p['muc']['nick'] == 'bob' else None)
        bob['xep_0045'].join_muc(room, 'bob')
        await asyncio.wait_for(bob_joined.wait(), STEP)
        # bob created the room: it stays locked until its owner accepts the
        # default configuration (instant room, XEP-0045 §10.1.2).
        iq = bob.make_iq_set(ito=room)
        iq.append(ET.fromstring("<query xmlns='http://jabber.org/protocol/muc#owner'>"
                                "<x xmlns='jabber:x:data' type='submit'/></query>"))
        await iq.send(timeout=STEP)
        alice['xep_0045'].join_muc(room, 'alice')
        await asyncio.wait_for(joined.wait(), STEP)
        got = asyncio.Event()
        bob.add_event_handler('groupchat_message', lambda m: got.set() if m['body'] == 'hi room' else None)
        alice.send_message(mto=room, mbody='hi room', mtype='groupchat')
        await asyncio.wait_for(got.wait(), STEP)
    await step('parley user joins a room on the peer MUC', muc())

    async def pings():
        await alice['xep_0199'].ping(jid=a.peer_domain, timeout=STEP)
        await bob['xep_0199'].ping(jid=a.parley_domain, timeout=STEP)
    await step('ping both ways', pings())

    async def vcards():
        for c, name in ((alice, 'Alice of Parley'), (bob, 'Bob of the peer')):
            vc = c['xep_0054'].make_vcard()
            vc['FN'] = name
            await c['xep_0054'].publish_vcard(vc, timeout=STEP)
        r = await alice['xep_0054'].get_vcard(jid=bob_bare, cached=False, local=False, timeout=STEP)
        if r['vcard_temp']['FN'] != 'Bob of the peer':
            raise Exception('alice got %s' % r)
        r = await bob['xep_0054'].get_vcard(jid=alice_bare, cached=False, local=False, timeout=STEP)
        if r['vcard_temp']['FN'] != 'Alice of Parley':
            raise Exception('bob got %s' % r)
    await step('vCard of the other user both ways', vcards())

    async def offline(sender, receiver, resource, body):
        # The receiver goes away; the message waits on its server and
        # arrives when it comes back (a new session).
        gone = asyncio.Event()
        receiver.add_event_handler('disconnected', lambda _: gone.set())
        receiver.disconnect()
        await asyncio.wait_for(gone.wait(), STEP)
        await asyncio.sleep(0.3)  # the receiver's server has ended the session
        sender.send_message(mto=receiver.boundjid.bare, mbody=body, mtype='chat')
        await asyncio.sleep(0.5)  # stored before the new session starts
        ip, port = receiver.connect_addr
        again = client(receiver.boundjid.bare + '/' + resource, a.password, ip, port,
                       'SCRAM-SHA-256' if receiver is alice else 'SCRAM-SHA-1')
        await online(again)
        await wait_message(again, body)
        return again
    bob2 = None
    try:
        bob2 = await offline(alice, bob, 'back', 'while you were away (parley)')
        print('PASS offline message parley -> peer', flush=True)
    except Exception as e:  # noqa: BLE001
        failed += 1
        print('FAIL offline message parley -> peer: %r' % (e,), flush=True)
    sender = bob2 or bob
    try:
        alice2 = await offline(sender, alice, 'back', 'while you were away (peer)')
        print('PASS offline message peer -> parley', flush=True)
        alice2.disconnect()
    except Exception as e:  # noqa: BLE001
        failed += 1
        print('FAIL offline message peer -> parley: %r' % (e,), flush=True)

    for c in (alice, bob, bob2):
        if c is not None:
            c.disconnect()
    await asyncio.sleep(0.5)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(asyncio.run(main()))
