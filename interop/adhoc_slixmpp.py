"""slixmpp (xep_0050) against Parley's XEP-0133 service administration:
the admin lists the commands and runs add-user in two stages (the form,
then the submitted form), and the new account logs in; a non-admin sees no
commands and is refused add-user with forbidden. Prints PASS/FAIL lines;
used by interop/adhoc.sh.

usage: adhoc_slixmpp.py IP PORT DOMAIN PASSWORD
"""
import sys

from slixmpp.exceptions import IqError

import common

IP, PORT, DOMAIN, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ADD_USER = "http://jabber.org/protocol/admin#add-user"
NEW_USER, NEW_PASSWORD = "newbie", "newbie-secret-1"
report = common.Report("slixmpp adhoc ")


def client(user, password=PASSWORD):
    return common.Client(f"{user}@{DOMAIN}/adhoc", password,
                         plugins=("xep_0004", "xep_0030", "xep_0050"))


async def connect(user, password=PASSWORD):
    c = client(user, password)
    if not await common.login(c, IP, PORT):
        raise RuntimeError(f"{user} could not log in")
    return c


def step(name, coro, **kw):
    return common.step(report, name, coro, **kw)


async def main():
    admin, bob = await connect("admin"), await connect("bob")

    async def listed(c):
        items = await c["xep_0050"].get_commands(DOMAIN)
        return [i[1] for i in items["disco_items"]["items"]]
    await step("admin's command list has add-user", listed(admin), ok=lambda r: r is not None and ADD_USER in r)
    await step("bob's command list is empty", listed(bob), ok=lambda r: r == [])

    async def add_user():
        first = await admin["xep_0050"].send_command(DOMAIN, ADD_USER)
        cmd = first["command"]
        fields = [f.get("var") for f in first.xml.iter("{jabber:x:data}field")]
        if cmd["status"] != "executing" or "accountjid" not in fields:
            return f"first stage: {first}"
        form = admin["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/admin")
        form.add_field(var="accountjid", value=f"{NEW_USER}@{DOMAIN}")
        form.add_field(var="password", value=NEW_PASSWORD)
        form.add_field(var="password-verify", value=NEW_PASSWORD)
        done = await admin["xep_0050"].send_command(DOMAIN, ADD_USER, action="complete",
                                                    sessionid=cmd["sessionid"], payload=form)
        return done["command"]["status"] == "completed" or f"second stage: {done}"
    await step("admin runs add-user (form, then submit)", add_user(), ok=lambda r: r is True, detail=str)

    async def new_login():
        c = client(NEW_USER, NEW_PASSWORD)
        ok = await common.login(c, IP, PORT)
        c.disconnect()
        return ok
    await step("the new account logs in", new_login(), ok=lambda r: r is True)

    async def refused():
        try:
            await bob["xep_0050"].send_command(DOMAIN, ADD_USER)
        except IqError as e:
            return e.iq["error"]["condition"]
        return "no error"
    await step("non-admin bob is refused add-user (forbidden)", refused(), ok=lambda r: r == "forbidden",
               detail=lambda r: str(r))

    for c in (admin, bob):
        c.disconnect()


if __name__ == "__main__":
    sys.exit(common.run_main(main, 90, report))
