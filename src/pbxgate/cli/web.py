"""``pbxgate web``: the web console's users, their roles and the audit log."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from pbxgate.cli.context import AppContext, pass_app
from pbxgate.errors import InputError

if TYPE_CHECKING:
    from pbxgate.web.users import UserStore

# pbxgate.web.users.Role, spelled out so that --help does not load SQLAlchemy (a test checks)
ROLES = ("viewer", "listener", "admin")


@click.group(invoke_without_command=True)
@click.option("--listen", help="host:port to serve on (default: [web] listen, 127.0.0.1:8080).")
@click.pass_context
def web(ctx: click.Context, listen: str | None) -> None:
    """The web console: today's calls, the call list, for named users, in a browser.

    `pbxgate web` serves it ([web] listen, 127.0.0.1:8080; put a TLS reverse proxy in front
    of anything but localhost). Every page needs a login except /health; users, their roles
    (viewer: calls and reports; listener: also recordings; admin: also notifications and
    users) and the audit log of who did what are managed with the commands below.

    \b
    Examples:
      pbxgate web user add anna --role admin
      pbxgate web                                # then open http://127.0.0.1:8080
      pbxgate web audit --limit 20
    """
    if ctx.invoked_subcommand is None:
        _serve(ctx.find_object(AppContext), listen)


def _serve(app: AppContext | None, listen: str | None) -> None:
    import uvicorn  # noqa: PLC0415

    from pbxgate.web.app import create_app  # noqa: PLC0415
    from pbxgate.web.settings import WebSettings  # noqa: PLC0415

    assert app is not None
    settings = app.settings
    web_settings = settings.get(WebSettings)
    address = listen or web_settings.listen
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--listen {address!r} is not host:port")
    console = create_app(settings, listen=address)
    if not console.state.users.users():
        click.echo("no users yet: add one with 'pbxgate web user add NAME --role admin'", err=True)
    click.echo(f"pbxgate web console on http://{address}/ (Ctrl-C stops it)", err=True)
    uvicorn.run(
        console,
        host=host.strip("[]"),
        port=int(port),
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips=",".join(web_settings.trusted_proxies),
    )


@web.group()
def user() -> None:
    """Add, change, remove and list the console's users.

    A password is asked for twice on a terminal, or read as one line from standard input
    otherwise; never give it on the command line.

    \b
    Examples:
      pbxgate web user add anna --role viewer
      printf '%s\\n' "$PASSWORD" | pbxgate web user passwd anna
    """


@contextmanager
def _store(app: AppContext) -> Iterator[UserStore]:
    from pbxgate.web.settings import WebSettings  # noqa: PLC0415
    from pbxgate.web.users import UserStore  # noqa: PLC0415

    store = UserStore(app.settings.get(WebSettings).database_path)
    try:
        yield store
    finally:
        store.close()


def _operator() -> str:
    """Who ran the command, for the audit log: the system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no $USER and no passwd entry, as in some containers
        return f"cli:uid {os.getuid()}"


def read_password(confirm: bool = True) -> str:
    """The new password: asked for (hidden, twice) on a terminal, else stdin's first line."""
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=confirm,
                                err=True))  # fmt: skip
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise InputError("no password on standard input", hint="give it as one line")
    return line


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True,
              help="viewer: calls and reports; listener: also recordings; admin: also "
                   "notifications and users.")  # fmt: skip
@pass_app
def user_add(app: AppContext, name: str, role: str) -> None:
    """Add a user; the password (10 characters or more) is asked for.

    \b
    Example:
      pbxgate web user add anna --role listener
    """
    from pbxgate.web.users import Role, check_name, user_exists  # noqa: PLC0415

    check_name(name)
    with _store(app) as store:
        if store.get(name) is not None:  # said before the password is asked for
            raise user_exists(name)
        store.add(name, read_password(), Role(role))
        store.audit(_operator(), "user-add", f"{name} as {role}")
    click.echo(f"added {name} as {role}")


@user.command("passwd")
@click.argument("name")
@pass_app
def user_passwd(app: AppContext, name: str) -> None:
    """Set a user's password; it is asked for.

    \b
    Example:
      pbxgate web user passwd anna
    """
    from pbxgate.web.users import check_name, no_such_user  # noqa: PLC0415

    check_name(name)
    with _store(app) as store:
        if store.get(name) is None:  # said before the password is asked for
            raise no_such_user(name)
        store.set_password(name, read_password())
        store.audit(_operator(), "user-passwd", name)
    click.echo(f"password of {name} changed")


@user.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@pass_app
def user_role(app: AppContext, name: str, role: str) -> None:
    """Give a user another role.

    \b
    Example:
      pbxgate web user role anna admin
    """
    from pbxgate.web.users import Role  # noqa: PLC0415

    with _store(app) as store:
        store.set_role(name, Role(role))
        store.audit(_operator(), "user-role", f"{name} to {role}")
    click.echo(f"{name} is now {role}")


@user.command("remove")
@click.argument("name")
@pass_app
def user_remove(app: AppContext, name: str) -> None:
    """Remove a user (the audit log keeps what they did).

    \b
    Example:
      pbxgate web user remove anna
    """
    with _store(app) as store:
        store.remove(name)
        store.audit(_operator(), "user-remove", name)
    click.echo(f"removed {name}")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per user.")
@pass_app
def user_list(app: AppContext, as_json: bool) -> None:
    """The users, their roles, when each was added and last changed.

    \b
    Example:
      pbxgate web user list
      anna      listener  added 2026-12-01 09:00  changed 2026-12-05 12:01
    """
    with _store(app) as store:
        found = store.users()
    for u in found:
        if as_json:
            click.echo(json.dumps({"name": u.name, "role": u.role.value,
                                   "created": u.created.isoformat(),
                                   "changed": u.changed.isoformat()}))  # fmt: skip
            continue
        click.echo(f"{u.name:<16} {u.role.value:<9} added {u.created:%Y-%m-%d %H:%M}  "
                   f"changed {u.changed:%Y-%m-%d %H:%M}")  # fmt: skip
    if not found and not as_json:
        click.echo("no users yet: add one with pbxgate web user add NAME --role admin", err=True)


@web.command("audit")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True,
              help="Show this many of the latest entries.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry.")
@pass_app
def audit(app: AppContext, limit: int, as_json: bool) -> None:
    """Who did what in the console and from where (times in UTC), newest first.

    \b
    Example:
      pbxgate web audit --limit 20
      2026-12-05 12:01:18  anna  login  192.0.2.10
    """
    with _store(app) as store:
        entries = store.audit_log(limit)
    for e in entries:
        if as_json:
            click.echo(json.dumps({"id": e.id, "at": e.at.isoformat(), "who": e.who,
                                   "action": e.action, "detail": e.detail,
                                   "address": e.address}, ensure_ascii=False))  # fmt: skip
            continue
        line = "  ".join(x for x in (f"{e.at:%Y-%m-%d %H:%M:%S}", e.who, e.action, e.detail,
                                     e.address) if x)  # fmt: skip
        click.echo(line)
    if not entries and not as_json:
        click.echo("the audit log is empty", err=True)
