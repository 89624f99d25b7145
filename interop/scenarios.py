#!/usr/bin/python3
"""Interop scenarios: real XMPP clients against a running Parley.

Run by interop/run.sh, which starts the server and creates the accounts
alice, bob, carol and dave (all with the same password). Each scenario prints
one line, "PASS name (seconds)" or "FAIL name: why"; a failure caused by a
server reply quotes the stanza the server sent. The exit status is non-zero
if anything failed. The clients are slixmpp (Debian's python3-slixmpp, run
with /usr/bin/python3) and go-sendxmpp; none of them was written by us.

Every client connects to --ip explicitly (no DNS, no SRV) and accepts the
server's generated self-signed certificate.

    /usr/bin/python3 interop/scenarios.py --ip 127.0.0.21 --port 15222 \
        --tls-port 15223 --domain interop.test --password ... [--only NAME...]
"""

import argparse
import asyncio
import collections
import datetime
import logging
import os
import ssl
import sys
import time
import uuid

from slixmpp import ClientXMPP, JID
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ElementBase, ET

import common

STEP = 8.0        # seconds any single wait (login, a reply, a delivery) may take
SCENARIO = 25.0   # seconds a whole scenario may take

NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'


class Failure(Exception):
    """A scenario step did not see what the RFC/XEP requires."""


def check(cond, why):
    if not cond:
        raise Failure(why)


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, name):
        self.passed += 1
        print(f'PASS {name}', flush=True)

    def fail(self, name, why):
        self.failed += 1
        why = ' '.join(str(why).split('\n'))
        print(f'FAIL {name}: {why}', flush=True)


R = Results()


class Client(ClientXMPP):
    """A slixmpp client that records everything it receives so scenarios can
    wait for "a stanza matching X" without racing the event handlers."""

    def __init__(self, args, user, resource, mech='SCRAM-SHA-256', send_cb_flag=False):
        jid = f'{user}@{args.domain}/{resource}'
        super().__init__(jid, args.password, plugin_config={
            # Only this mechanism; never PLAIN on an unencrypted stream.
            'feature_mechanisms': {'use_mech': mech, 'unencrypted_plain': False},
        })
        self.args = args
        if not send_cb_flag:
            # Plain SCRAM-SHA-256 sends the GS2 flag 'n', not 'y' (see
            # common.withhold_channel_binding; the scenario "1 SCRAM 'y'
            # flag rejected while -PLUS is offered" checks that 'y' fails).
            common.withhold_channel_binding(self)
        # The server's certificate is self-signed and for args.domain, while
        # we connect to an IP: accept it.
        common.accept_self_signed(self)
        # Subscription requests are answered by the scenarios, not by slixmpp.
        self.auto_authorize = None
        self.auto_subscribe = False
        self.whitespace_keepalive = False
        for p in ('xep_0030', 'xep_0054', 'xep_0049', 'xep_0199', 'xep_0092',
                  'xep_0202', 'xep_0012', 'xep_0203'):
            self.register_plugin(p)
        self.seen = {'message': [], 'presence': [], 'roster_push': []}
        self.trace = collections.deque(maxlen=40)
        self._changed = asyncio.Event()
        self.add_event_handler('message', lambda s: self._record('message', s))
        self.add_event_handler('presence', lambda s: self._record('presence', s))
        self.add_filter('in', self._trace_in)
        self.add_filter('out', self._trace_out)

    def _trace_in(self, s):
        self.trace.append('<< ' + str(s))
        if s.name == 'iq' and s['type'] == 'set' and \
                s.xml.find('{jabber:iq:roster}query') is not None:
            self._record('roster_push', s)
        return s

    def _trace_out(self, s):
        self.trace.append('>> ' + str(s))
        return s

    def _record(self, kind, stanza):
        self.seen[kind].append(stanza)
        self._changed.set()

    async def login(self, direct_tls=False):
        """Connect to the server's IP (STARTTLS port, or the direct TLS port
        with use_ssl) and wait for session_start."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def settle(result):
            if not done.done():
                done.set_result(result)

        handlers = {
            'session_start': lambda _: settle(None),
            'failed_all_auth': lambda _: settle('SASL authentication failed'),
            'connection_failed': lambda e: settle(f'connection failed: {e}'),
            'stream_error': lambda e: settle(f'stream error: {e}'),
            'disconnected': lambda e: settle(f'disconnected before session start ({e})'),
            'session_bind_failed': lambda e: settle(f'resource binding failed: {e}'),
        }
        for ev, h in handlers.items():
            self.add_event_handler(ev, h)
        port = self.args.tls_port if direct_tls else self.args.port
        try:
            self.connect(address=(self.args.ip, port), use_ssl=direct_tls,
                         force_starttls=not direct_tls)
            try:
                err = await asyncio.wait_for(done, STEP)
            except asyncio.TimeoutError:
                err = f'no session within {STEP:.0f}s'
        finally:
            for ev, h in handlers.items():
                self.del_event_handler(ev, h)
        if err:
            self.kill()
            raise Failure(f'{self.requested_jid} login to {self.args.ip}:{port}: {err}; '
                          f'last stanzas: {self.last_stanzas(6)}')

    async def online(self, direct_tls=False, **presence):
        """Log in and send initial presence (RFC 6121 §4.2). The roster is
        not fetched here so that a roster bug shows up in scenario 2 only."""
        await self.login(direct_tls)
        self.send_presence(**presence)

    async def logout(self):
        try:
            await asyncio.wait_for(self.disconnect(wait=2.0), STEP)
        except asyncio.TimeoutError:
            self.kill()

    def kill(self):
        try:
            self.abort()
        except Exception:  # already closed underneath
            pass

    async def wait_for(self, kind, pred, what):
        """The first received stanza of kind that satisfies pred, waiting at
        most STEP seconds for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STEP
        while True:
            for s in self.seen[kind]:
                if pred(s):
                    return s
            left = deadline - loop.time()
            if left <= 0:
                raise Failure(f'{self.boundjid} did not receive {what} within {STEP:.0f}s; '
                              f'{kind}s received: {[str(s) for s in self.seen[kind][-4:]]}')
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def last_stanzas(self, n):
        return list(self.trace)[-n:]


async def iq(coro, what):
    """Await an IQ round trip; an error or timeout becomes a Failure that
    quotes what the server sent."""
    try:
        return await coro
    except IqError as e:
        raise Failure(f'{what}: server returned an error: {e.iq}')
    except IqTimeout as e:
        raise Failure(f'{what}: no reply within {STEP:.0f}s (request: {e.iq})')


async def iq_error(client, ito, itype, payload, what):
    """Send an IQ with a raw XML payload that must fail; return the error
    condition (a Failure if the server answered with a result or not at all,
    RFC 6120 §8.2.3 requires an answer to every get/set)."""
    req = client.Iq()
    if ito:
        req['to'] = ito
    req['type'] = itype
    req.xml.append(ET.fromstring(payload))
    try:
        res = await req.send(timeout=STEP)
    except IqError as e:
        return e.iq['error']['condition'], e.iq
    except IqTimeout:
        raise Failure(f'{what}: no reply within {STEP:.0f}s to {req}')
    raise Failure(f'{what}: expected an error, got {res}')


class State:
    """Clients shared between the scenarios that build on each other."""

    def __init__(self, args):
        self.args = args
        self.clients = []

    def client(self, user, resource, **kw):
        c = Client(self.args, user, resource, **kw)
        self.clients.append(c)
        return c

    def bare(self, user):
        return f'{user}@{self.args.domain}'

    async def close(self):
        for c in self.clients:
            if c.transport is not None:
                await c.logout()


# ---------------------------------------------------------------------------
# 1. Login. RFC 6120 §5 (STARTTLS) + §6 (SASL) with SCRAM-SHA-256 (RFC 7677),
#    then resource binding (§7); and the same over direct TLS (XEP-0368), where
#    the TLS handshake comes first and no STARTTLS is offered.
# ---------------------------------------------------------------------------

async def s_login_starttls(st):
    c = st.client('alice', 'starttls')
    await c.login(direct_tls=False)
    mech = c['feature_mechanisms'].mech
    check(mech is not None and mech.name == 'SCRAM-SHA-256',
          f'negotiated mechanism {getattr(mech, "name", None)}, want SCRAM-SHA-256')
    check(isinstance(c.socket, ssl.SSLObject), 'stream is not TLS-protected after STARTTLS')
    check(c.boundjid.bare == st.bare('alice') and c.boundjid.resource,
          f'bound JID {c.boundjid} is not alice@{st.args.domain}/<resource>')
    await c.logout()


async def s_login_direct_tls(st):
    c = st.client('bob', 'directtls')
    await c.login(direct_tls=True)
    mech = c['feature_mechanisms'].mech
    check(mech is not None and mech.name == 'SCRAM-SHA-256',
          f'negotiated mechanism {getattr(mech, "name", None)}, want SCRAM-SHA-256')
    check(isinstance(c.socket, ssl.SSLObject), 'direct TLS stream is not TLS-protected')
    check(c.boundjid.bare == st.bare('bob'), f'bound JID {c.boundjid}')
    await c.logout()


async def s_login_bad_password(st):
    """RFC 6120 §6.5: a wrong password is a SASL <failure/>, not a session."""
    args = argparse.Namespace(**{**vars(st.args), 'password': 'wrong-password-xyz'})
    c = Client(args, 'alice', 'badpw')
    try:
        await c.login()
    except Failure as e:
        check('SASL authentication failed' in str(e), f'expected a SASL failure, got: {e}')
        return
    await c.logout()
    raise Failure('login with a wrong password succeeded')


async def s_login_downgrade_flag(st):
    """RFC 5802 §6: gs2 flag 'y' (client supports channel binding but
    thinks the server does not) while the server offers -PLUS: MUST fail.
    This is what stock slixmpp 1.8.3 sends for non-PLUS SCRAM over TLS."""
    c = Client(st.args, 'alice', 'downgrade', send_cb_flag=True)
    try:
        await c.login()
    except Failure as e:
        auths = [t for t in c.trace if t.startswith('>> <auth ')]
        check(auths and '>eSws' in auths[0],  # base64 of "y,,"
              f'client did not send the y flag, nothing tested: {auths}')
        check('SASL authentication failed' in str(e), f'expected a SASL failure, got: {e}')
        return
    await c.logout()
    raise Failure("SCRAM-SHA-256 with gs2 flag 'y' succeeded although the server offers "
                  '-PLUS: a channel-binding downgrade went unnoticed')


async def s_login_plain(st):
    """SASL PLAIN (RFC 4616), offered only once the stream is encrypted."""
    c = st.client('carol', 'plain', mech='PLAIN')
    await c.login()
    check(c['feature_mechanisms'].mech.name == 'PLAIN', 'PLAIN was not used')
    await c.logout()


async def s_login_stock_slixmpp(st):
    """slixmpp with its stock settings, as a user of the Debian package gets
    it. 1.8.3 tries SCRAM-*-PLUS with tls-unique (TLS 1.3 has no tls-unique,
    so it is refused), then SCRAM-* with the 'y' flag (refused as a
    downgrade, RFC 5802 §6), then PLAIN. None of the refused attempts checks
    a password, so they must not use up the server's failure limit: the
    login has to succeed."""
    c = Client(st.args, 'dave', 'stock', mech=None, send_cb_flag=True)
    await c.login()
    check(c['feature_mechanisms'].mech.name == 'PLAIN',
          f"logged in with {c['feature_mechanisms'].mech.name}, expected the PLAIN fallback")
    await c.logout()


# ---------------------------------------------------------------------------
# 2. Roster and subscriptions, RFC 6121 §3: alice subscribes to bob, bob
#    approves and subscribes back, alice approves; both rosters (fetched
#    fresh with a roster get, §2.1.3) end with subscription='both'.
# ---------------------------------------------------------------------------

async def s_subscription(st):
    alice, bob = st.alice, st.bob
    a, b = st.bare('alice'), st.bare('bob')
    # §2.1.3: fetching the roster makes each an "interested resource"
    # (§2.1.6), which is what gets roster pushes.
    for c, who in ((alice, 'alice'), (bob, 'bob')):
        res = await iq(c.get_roster(timeout=STEP), f'{who} initial roster get')
        check(res.xml.find('{jabber:iq:roster}query') is not None,
              f'{who} roster result without <query xmlns="jabber:iq:roster"/>: {res}')
    alice.send_presence(pto=b, ptype='subscribe')
    await bob.wait_for('presence', lambda p: p['type'] == 'subscribe' and p['from'].bare == a,
                       'presence type=subscribe from alice')
    bob.send_presence(pto=a, ptype='subscribed')
    bob.send_presence(pto=a, ptype='subscribe')
    await alice.wait_for('presence', lambda p: p['type'] == 'subscribed' and p['from'].bare == b,
                         'presence type=subscribed from bob')
    await alice.wait_for('presence', lambda p: p['type'] == 'subscribe' and p['from'].bare == b,
                         'presence type=subscribe from bob')
    alice.send_presence(pto=b, ptype='subscribed')
    await bob.wait_for('presence', lambda p: p['type'] == 'subscribed' and p['from'].bare == a,
                       'presence type=subscribed from alice')
    # §3.1.5/§4.3: once bob is subscribed to alice, the server delivers
    # alice's current presence to him, and likewise the other way.
    await bob.wait_for('presence', lambda p: p['type'] == 'available' and p['from'].bare == a,
                       "alice's available presence after the subscription")
    await alice.wait_for('presence', lambda p: p['type'] == 'available' and p['from'].bare == b,
                         "bob's available presence after the subscription")
    # §3.1.2-§3.1.6: each state change is pushed to the user's resources;
    # the last push for the contact says subscription='both'.
    def pushed_both(other):
        def pred(push):
            return any(i.get('jid') == other and i.get('subscription') == 'both'
                       for i in push.xml.iter('{jabber:iq:roster}item'))
        return pred
    await alice.wait_for('roster_push', pushed_both(b), "a roster push with bob subscription='both'")
    await bob.wait_for('roster_push', pushed_both(a), "a roster push with alice subscription='both'")
    # slixmpp's own roster (kept from the pushes) agrees...
    for me, other, who in ((alice, b, 'alice'), (bob, a, 'bob')):
        sub = me.client_roster[other]['subscription']
        check(sub == 'both', f"{who}'s slixmpp roster has {other} subscription={sub!r}")
    # ...and so does a full roster get. It is sent without 'ver': a get
    # with the client's current version is (correctly, §2.6.3) answered
    # with an empty result.
    for me, other, who in ((alice, b, 'alice'), (bob, a, 'bob')):
        req = me.make_iq_get()
        req.xml.append(ET.Element('{jabber:iq:roster}query'))
        res = await iq(req.send(timeout=STEP), f'{who} full roster get')
        items = {i.get('jid'): i.get('subscription')
                 for i in res.xml.iter('{jabber:iq:roster}item')}
        check(items.get(other) == 'both', f"{who}'s roster has {other} with subscription="
                                          f"{items.get(other)!r}, want 'both': {res}")


# ---------------------------------------------------------------------------
# 3. Presence broadcast, RFC 6121 §4.4: bob's <show>away</show> and
#    <status>at lunch</status> reach alice, who is subscribed to him.
# ---------------------------------------------------------------------------

async def s_presence_status(st):
    st.bob.send_presence(pshow='away', pstatus='at lunch')
    await st.alice.wait_for(
        'presence',
        lambda p: p['from'].bare == st.bare('bob') and p['show'] == 'away'
        and p['status'] == 'at lunch',
        "bob's presence with show=away status='at lunch'")


# ---------------------------------------------------------------------------
# 4. Messages, RFC 6121 §8.5: a chat message to an online bare JID is
#    delivered; to an offline user it is stored (XEP-0160) and delivered at
#    the next initial presence, marked with a XEP-0203 <delay/>.
# ---------------------------------------------------------------------------

async def s_message_online(st):
    body = f'hello bob {uuid.uuid4().hex[:8]}'
    st.alice.send_message(mto=st.bare('bob'), mbody=body, mtype='chat')
    m = await st.bob.wait_for('message', lambda m: m['body'] == body, f'message {body!r}')
    check(m['from'].bare == st.bare('alice'), f"from={m['from']}, want alice: {m}")


async def s_message_nobody(st):
    """RFC 6121 §8.5.2.2.1/§8.5.1: a message to an account that does not
    exist comes back as an error with service-unavailable."""
    to = f'nobody-{uuid.uuid4().hex[:6]}@{st.args.domain}'
    st.alice.send_message(mto=to, mbody='anyone there?', mtype='chat')
    m = await st.alice.wait_for('message', lambda m: m['type'] == 'error' and m['from'].bare == to,
                                f'an error message from {to}')
    cond = m['error']['condition']
    check(cond == 'service-unavailable', f'condition {cond!r}, want service-unavailable: {m}')


async def s_message_offline(st):
    a, b = st.bare('alice'), st.bare('bob')
    await st.bob.logout()
    # Wait for the server to process bob's departure: alice (subscribed to
    # him) gets his unavailable presence. Without a subscription, a moment.
    try:
        await st.alice.wait_for('presence', lambda p: p['from'].bare == b
                                and p['type'] == 'unavailable', "bob's unavailable presence")
    except Failure:
        await asyncio.sleep(0.5)
    body = f'while you were out {uuid.uuid4().hex[:8]}'
    st.alice.send_message(mto=b, mbody=body, mtype='chat')
    # Round trip to alice's server so the message has surely been handled.
    await iq(st.alice['xep_0199'].send_ping(st.args.domain, timeout=STEP), 'ping after the message')
    bob = st.client('bob', 'back')
    await bob.online()
    m = await bob.wait_for('message', lambda m: m['body'] == body, f'offline message {body!r}')
    check(m['from'].bare == a, f"from={m['from']}, want alice: {m}")
    delay = m.xml.find('{urn:xmpp:delay}delay')
    check(delay is not None and delay.get('stamp'),
          f'offline message has no XEP-0203 <delay stamp=.../>: {m}')
    st.bob = bob


# ---------------------------------------------------------------------------
# 5. vCard, XEP-0054: alice publishes FN with an IQ set to her bare JID (no
#    'to'); bob gets it with an IQ get to alice's bare JID, answered by the
#    server on her behalf.
# ---------------------------------------------------------------------------

async def s_vcard(st):
    fn = f'Alice Interop {uuid.uuid4().hex[:6]}'
    vc = st.alice['xep_0054'].make_vcard()
    vc['FN'] = fn
    await iq(st.alice['xep_0054'].publish_vcard(vc, timeout=STEP), 'alice vCard set')
    res = await iq(st.bob['xep_0054'].get_vcard(JID(st.bare('alice')), local=False,
                                                cached=False, timeout=STEP), 'bob vCard get')
    got = res['vcard_temp']['FN']
    check(got == fn, f'FN={got!r}, want {fn!r}: {res}')


# ---------------------------------------------------------------------------
# 6. Private XML storage, XEP-0049: store an element in a custom namespace
#    and get it back; another user's namespace is not readable.
# ---------------------------------------------------------------------------

class InteropPrivate(ElementBase):
    name = 'prefs'
    namespace = 'urn:example:parley-interop'
    plugin_attrib = 'interop_prefs'
    interfaces = {'colour'}
    sub_interfaces = {'colour'}


async def s_private(st):
    alice = st.alice
    alice['xep_0049'].register(InteropPrivate)
    colour = f'teal-{uuid.uuid4().hex[:6]}'
    el = InteropPrivate()
    el['colour'] = colour
    await iq(alice['xep_0049'].store(el, timeout=STEP), 'private storage set')
    res = await iq(alice['xep_0049'].retrieve('interop_prefs', timeout=STEP), 'private storage get')
    got = res['private']['interop_prefs']['colour']
    check(got == colour, f'got colour {got!r}, want {colour!r}: {res}')
    # XEP-0049 §3: only the owner may touch it; bob asking alice's bare JID
    # gets an error (forbidden is what the XEP's examples show).
    cond, err = await iq_error(st.bob, st.bare('alice'), 'get',
                               '<query xmlns="jabber:iq:private">'
                               '<prefs xmlns="urn:example:parley-interop"/></query>',
                               "bob reading alice's private storage")
    check(cond == 'forbidden', f"bob reading alice's private XML: condition {cond!r}, "
                               f'want forbidden: {err}')


# ---------------------------------------------------------------------------
# 7. Service discovery, XEP-0030: disco#info on the server's domain shows the
#    identity category=server type=im (XEP-0030 registry) and the features
#    of the modules exercised in scenario 8.
# ---------------------------------------------------------------------------

SERVER_FEATURES = [NS_DISCO_INFO, 'jabber:iq:version', 'urn:xmpp:ping', 'urn:xmpp:time',
                   'jabber:iq:last']


async def s_disco(st):
    res = await iq(st.alice['xep_0030'].get_info(jid=st.args.domain, local=False, timeout=STEP),
                   'disco#info on the server')
    info = res['disco_info']
    idents = {(i[0], i[1]) for i in info['identities']}
    check(('server', 'im') in idents, f'no identity category=server type=im: {res}')
    missing = [f for f in SERVER_FEATURES if f not in info['features']]
    check(not missing, f'features missing {missing}: {res}')


# ---------------------------------------------------------------------------
# 8. Server queries: XEP-0199 ping (empty result), XEP-0092 software version
#    (name and version), XEP-0202 entity time (utc and tzo), XEP-0012 last
#    activity on the server (its uptime in seconds).
# ---------------------------------------------------------------------------

async def s_ping(st):
    await iq(st.alice['xep_0199'].send_ping(st.args.domain, timeout=STEP), 'ping the server')


async def s_version(st):
    res = await iq(st.alice['xep_0092'].get_version(st.args.domain, timeout=STEP),
                   'software version of the server')
    v = res['software_version']
    check(v['name'] and v['version'], f'name or version empty: {res}')


async def s_time(st):
    res = await iq(st.alice['xep_0202'].get_entity_time(st.args.domain, timeout=STEP),
                   'entity time of the server')
    t = res.xml.find('{urn:xmpp:time}time')
    check(t is not None, f'no <time xmlns="urn:xmpp:time"/>: {res}')
    utc = t.findtext('{urn:xmpp:time}utc')
    tzo = t.findtext('{urn:xmpp:time}tzo')
    check(utc and tzo, f'<utc/> or <tzo/> missing: {res}')
    check(utc.endswith('Z'), f'<utc> {utc!r} is not in UTC (XEP-0082): {res}')
    # Parsed here: slixmpp 1.8.3's ['entity_time']['utc'] appends a second
    # 'Z' to the value and fails on exactly the form XEP-0202's examples use.
    when = datetime.datetime.fromisoformat(utc)
    skew = abs(when.timestamp() - time.time())
    check(skew < 60, f'server clock off by {skew:.0f}s: {res}')


async def s_last(st):
    res = await iq(st.alice['xep_0012'].get_last_activity(JID(st.args.domain), timeout=STEP),
                   'last activity (uptime) of the server')
    q = res.xml.find('{jabber:iq:last}query')
    check(q is not None and q.get('seconds', '').isdigit(),
          f'no <query xmlns="jabber:iq:last" seconds="N"/>: {res}')


async def s_last_contact(st):
    """XEP-0012 §4: a subscribed contact's bare JID, with no resource
    online, answers with the seconds since its last session ended and the
    status of its last unavailable presence."""
    a = st.bare('alice')
    await st.alice.logout()
    await st.bob.wait_for('presence', lambda p: p['from'].bare == a and p['type'] == 'unavailable',
                          "alice's unavailable presence")
    res = await iq(st.bob['xep_0012'].get_last_activity(JID(a), timeout=STEP),
                   "bob asks alice's last activity")
    q = res.xml.find('{jabber:iq:last}query')
    check(q is not None and q.get('seconds', '').isdigit() and int(q.get('seconds')) < 60,
          f'want <query xmlns="jabber:iq:last" seconds="small N"/>: {res}')


async def s_unknown_iq(st):
    """RFC 6120 §8.4: an IQ get in a namespace nobody handles is answered
    with service-unavailable, whether addressed to the server or (handled by
    the server on the user's behalf, RFC 6121 §8.5.1) to a bare JID."""
    payload = '<query xmlns="urn:example:parley-interop:nobody-handles-this"/>'
    for to, who in ((st.args.domain, 'the server'), (st.bare('bob'), "bob's bare JID"),
                    (None, "alice's own account (no 'to')")):
        cond, err = await iq_error(st.alice, to, 'get', payload, f'unknown IQ to {who}')
        check(cond == 'service-unavailable',
              f'unknown IQ to {who}: condition {cond!r}, want service-unavailable: {err}')


# ---------------------------------------------------------------------------
# 9. go-sendxmpp (Go, go-xmpp library) logs in as carol and sends a message to
#    bob, over STARTTLS and over direct TLS; bob's slixmpp session gets both.
# ---------------------------------------------------------------------------

async def sendxmpp(st, body, direct_tls):
    port = st.args.tls_port if direct_tls else st.args.port
    cmd = ['go-sendxmpp', '-u', st.bare('carol'), '-p', st.args.password,
           '-j', f'{st.args.ip}:{port}', '-n', '--timeout', str(int(STEP))]
    if direct_tls:
        cmd.append('-t')
    cmd.append(st.bare('bob'))
    env = dict(os.environ, HOME=os.path.join(st.args.work, 'home'))
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(body.encode()), STEP + 2)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise Failure(f'go-sendxmpp did not finish within {STEP + 2:.0f}s: {" ".join(cmd)}')
    check(proc.returncode == 0,
          f'go-sendxmpp exited {proc.returncode}: {out.decode(errors="replace").strip()}')


async def s_sendxmpp(st, direct_tls):
    body = f'from go-sendxmpp {uuid.uuid4().hex[:8]}'
    await sendxmpp(st, body, direct_tls)
    m = await st.bob.wait_for('message', lambda m: m['body'].strip() == body,
                              f'go-sendxmpp message {body!r}')
    check(m['from'].bare == st.bare('carol'), f"from={m['from']}, want carol: {m}")


# ---------------------------------------------------------------------------


async def setup_pair(st):
    """alice and bob online (STARTTLS) with initial presence, for 2-9."""
    st.alice = st.client('alice', 'desk')
    st.bob = st.client('bob', 'phone')
    await st.alice.online()
    await st.bob.online()


SCENARIOS = [
    ('1 login STARTTLS + SCRAM-SHA-256', s_login_starttls),
    ('1 login direct TLS (XEP-0368) + SCRAM-SHA-256', s_login_direct_tls),
    ('1 login wrong password rejected', s_login_bad_password),
    ('1 login PLAIN over TLS', s_login_plain),
    ('1 login with stock slixmpp settings (channel-binding fallback)', s_login_stock_slixmpp),
    ("1 SCRAM 'y' flag rejected while -PLUS is offered", s_login_downgrade_flag),
    ('- alice and bob online', setup_pair),
    ('2 roster subscription both ways', s_subscription),
    ('3 presence show/status', s_presence_status),
    ('4 message online', s_message_online),
    ('4 message to a non-existent account bounces', s_message_nobody),
    ('4 message offline with XEP-0203 delay', s_message_offline),
    ('5 vCard set/get (XEP-0054)', s_vcard),
    ('6 private storage (XEP-0049)', s_private),
    ('7 disco#info on the server (XEP-0030)', s_disco),
    ('8 ping (XEP-0199)', s_ping),
    ('8 software version (XEP-0092)', s_version),
    ('8 entity time (XEP-0202)', s_time),
    ('8 last activity (XEP-0012)', s_last),
    ('8 unknown IQ namespace -> service-unavailable', s_unknown_iq),
    ('8 last activity of an offline contact (XEP-0012)', s_last_contact),
    ('9 go-sendxmpp STARTTLS -> bob', lambda st: s_sendxmpp(st, False)),
    ('9 go-sendxmpp direct TLS -> bob', lambda st: s_sendxmpp(st, True)),
]


async def main(args):
    st = State(args)
    setup_ok = True
    for name, fn in SCENARIOS:
        if args.only and not any(o in name for o in args.only) and not name.startswith('-'):
            continue
        if not setup_ok and not name.startswith('1 '):
            R.fail(name, 'skipped: alice and bob could not log in')
            continue
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(fn(st), SCENARIO)
        except Failure as e:
            R.fail(name, e)
        except asyncio.TimeoutError:
            R.fail(name, f'timed out after {SCENARIO:.0f}s')
        except Exception as e:  # a client-side surprise is still a failure
            logging.exception(name)
            R.fail(name, f'{type(e).__name__}: {e}')
        else:
            R.ok(f'{name} ({time.monotonic() - t0:.1f}s)')
            continue
        if name.startswith('-'):
            setup_ok = False
    await st.close()
    return R.failed == 0


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--ip', required=True)
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--tls-port', type=int, required=True)
    ap.add_argument('--domain', required=True)
    ap.add_argument('--password', required=True)
    ap.add_argument('--work', default='interop/.work/core')
    ap.add_argument('--only', nargs='*', default=[], help='run scenarios whose name contains this')
    ap.add_argument('-v', '--verbose', action='store_true', help='slixmpp debug log on stderr')
    a = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.ERROR,
                        format='%(asctime)s %(levelname)s %(name)s %(message)s', stream=sys.stderr)
    ok = asyncio.run(main(a))
    sys.exit(0 if ok else 1)
