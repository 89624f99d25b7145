#!/usr/bin/env python3
"""Raw-socket client for interop/sessions.sh: many bound sessions from one
address, each ended by the server with <invalid-from/> after a stanza with
a forged 'from', then one ordinary login. Standard library only, so what is
tested is the server, not a client library's recovery logic.

    sessions_raw.py HOST PORT DOMAIN USER PASSWORD COUNT
Prints PASS/FAIL lines."""
import base64
import socket
import ssl
import sys
import time

HOST, PORT, DOMAIN, USER, PASSWORD, COUNT = sys.argv[1:7]
PORT, COUNT = int(PORT), int(COUNT)
HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
          "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>" % DOMAIN)


class Stream:
    def __init__(self):
        self.sock = socket.create_connection((HOST, PORT), timeout=10)
        self.buf = b""

    def send(self, s):
        self.sock.sendall(s.encode())

    def until(self, *needles):
        """Read until one of needles is in the buffer; return the buffer
        and consume it. EOF or a timeout is an error."""
        while not any(n.encode() in self.buf for n in needles):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed while waiting for %r; got %r" % (needles, self.buf[-300:]))
            self.buf += chunk
        out, self.buf = self.buf, b""
        return out.decode(errors="replace")

    def closed(self):
        """True when the server closes the connection within 5 s."""
        self.sock.settimeout(5)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def login(self, resource):
        self.send(HEADER)
        self.until("</stream:features>")
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.until("<proceed")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname=DOMAIN)
        self.send(HEADER)
        self.until("</stream:features>")
        creds = base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode()).decode()
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % creds)
        if "<success" not in self.until("<success", "<failure"):
            raise RuntimeError("PLAIN refused")
        self.send(HEADER)
        self.until("</stream:features>")
        self.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  "<resource>%s</resource></bind></iq>" % resource)
        reply = self.until("</iq>")
        if "type='result'" not in reply and 'type="result"' not in reply:
            raise RuntimeError("bind failed: " + reply)


def main():
    failures = 0
    t0 = time.time()
    for i in range(COUNT):
        s = Stream()
        try:
            s.login("r")
            s.send("<message from='mallory@%s/x' to='%s@%s'><body>%d</body></message>" % (DOMAIN, USER, DOMAIN, i))
            got = s.until("</stream:stream>")
            if "invalid-from" not in got:
                raise RuntimeError("no invalid-from: " + got[-300:])
            if not s.closed():
                raise RuntimeError("connection left open")
        except Exception as e:  # noqa: BLE001 - report and stop
            failures += 1
            print("FAIL forged-from session %d: %s" % (i, e))
            break
        finally:
            s.sock.close()
    if failures == 0:
        print("PASS %d sessions ended by invalid-from, each closed by the server (%.1f s)" % (COUNT, time.time() - t0))
    s = Stream()
    try:
        s.login("after")
        s.send("<presence/>")
        got = s.until("<presence")
        print("PASS an ordinary login from the same address afterwards")
        s.send("</stream:stream>")
    except Exception as e:  # noqa: BLE001
        print("FAIL an ordinary login from the same address afterwards: %s" % e)
    finally:
        s.sock.close()


main()
