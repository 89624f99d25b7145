"""slixmpp (xep_0077) against Parley: register in-band, change the password,
log in with the new one, remove the account, and check the old and new
passwords no longer work. Prints PASS/FAIL lines; used by interop/register.sh.

usage: register_slixmpp.py IP PORT DOMAIN USER
"""
import asyncio
import sys

import slixmpp

import common

IP, PORT, DOMAIN, USER = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
JID = f"{USER}@{DOMAIN}"
PW1, PW2 = "first-password-1", "second-password-2"
report = common.Report("slixmpp ")


class Client(slixmpp.ClientXMPP):
    """One connection; action(client) runs after session start (or on the
    registration event when register=True)."""

    def __init__(self, password, action, register=False):
        super().__init__(JID, password, plugin_config=common.mechanism_config("SCRAM-SHA-256"))
        common.withhold_channel_binding(self)
        common.accept_self_signed(self)
        self.action, self.done = action, asyncio.get_event_loop().create_future()
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0077")
        self.register_plugin("xep_0199")
        if register:
            # slixmpp 1.8.3 queues every IQ until the session starts, which
            # would hold back the pre-authentication registration IQs that
            # xep_0077 sends; this (private) switch lets them through.
            self._always_send_everything = True
            self.add_event_handler("register", self.on_register)
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", lambda _: self.finish("auth-failed"))
        self.add_event_handler("disconnected", lambda _: self.finish("disconnected"))

    def finish(self, value):
        if not self.done.done():
            self.done.set_result(value)

    async def on_register(self, _):
        iq = self.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = USER
        iq["register"]["password"] = PW1
        iq["register"]["email"] = f"{USER}@example.org"
        iq["register"]["name"] = "Slix Registrant"
        try:
            await iq.send(timeout=8)
            report("registers in-band (xep_0077)", True)
        except slixmpp.exceptions.IqError as e:
            report("registers in-band (xep_0077)", False, str(e.iq["error"]))
            self.finish("register-failed")
            self.disconnect()

    async def on_start(self, _):
        try:
            value = await self.action(self)
        except Exception as e:  # report every failure as a FAIL line
            value = f"error: {e!r}"
        self.finish(value)
        self.disconnect()


async def run(password, action, register=False):
    c = Client(password, action, register)
    c.connect(address=(IP, PORT))
    try:
        return await asyncio.wait_for(c.done, 20)
    except asyncio.TimeoutError:
        c.disconnect()
        return "timeout"


async def change_password(c):
    await c["xep_0077"].change_password(PW2, timeout=8)
    return "changed"


async def remove(c):
    try:
        await c["xep_0077"].cancel_registration(timeout=8)
        return "removed"
    except slixmpp.exceptions.IqError as e:
        return "error: " + str(e.iq["error"])


async def noop(c):
    return "logged-in"


async def main():
    r = await run(PW1, change_password, register=True)
    report("changes its password (xep_0077)", r == "changed", r)
    r = await run(PW1, noop)
    report("old password refused after the change", r == "auth-failed", r)
    r = await run(PW2, remove)
    report("logs in with the new password and removes itself", r == "removed", r)
    r = await run(PW2, noop)
    report("removed account can no longer log in", r == "auth-failed", r)


if __name__ == "__main__":
    sys.exit(common.run_main(main, 120, report))
