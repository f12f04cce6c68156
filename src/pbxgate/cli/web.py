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
@click.option(
    "--demo",
    is_flag=True,
    help="Serve two weeks of generated calls from a new temporary folder, removed at exit; "
    "prints the demo user's password.",
)
@click.pass_context
def web(ctx: click.Context, listen: str | None, demo: bool) -> None:
    """The web console: today's calls, the call list, for named users, in a browser.

    `pbxgate web` serves it ([web] listen, 127.0.0.1:8080; put a TLS reverse proxy in front
    of anything but localhost). Every page needs a login except /health; users, their roles
    (viewer: calls and reports; listener: also recordings; admin: also notifications and
    users) and the audit log of who did what are managed with the commands below.

    \b
    Examples:
      pbxgate web user add anna --role admin
      pbxgate web                                # then open http://127.0.0.1:8080
      pbxgate web --demo                         # a first look, over generated calls
      pbxgate web audit --limit 20
      pbxgate web token add grafana --label dashboards   # a script reads /api/ with it
    """
    if ctx.invoked_subcommand is None and demo:
        _demo(listen or "127.0.0.1:8080")
    elif ctx.invoked_subcommand is None:
        _serve(ctx.find_object(AppContext), listen)


def _demo(listen: str) -> None:
    import shutil  # noqa: PLC0415
    import signal  # noqa: PLC0415
    import tempfile  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from pbxgate.web.demo import make_demo  # noqa: PLC0415

    def stopped(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # so that the folder below is removed on SIGTERM too

    # uvicorn hands a SIGTERM it caught back to the handler it found once it has stopped
    signal.signal(signal.SIGTERM, stopped)
    folder = Path(tempfile.mkdtemp(prefix="pbxgate-demo-"))
    try:
        click.echo(f"pbxgate web --demo: generating two weeks of calls in {folder} ...", err=True)
        demo = make_demo(folder, listen)
        click.echo(
            f"{demo.calls} calls, {demo.recordings} recordings; log in as {demo.user!r} with"
            f" the password {demo.password} (made for this demo only)",
            err=True,
        )
        _serve(AppContext(config_path=demo.config), listen)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
        # The console reads X-Forwarded-For itself, from [web] trusted_proxies only: uvicorn
        # rewriting the peer's address would hide the proxy's own address, which is what
        # decides whether the single sign-on header is believed.
        proxy_headers=False,
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
    """Set a user's password; it is asked for. Every session of the user ends.

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
    """Give a user another role. Every session of the user ends.

    \b
    Example:
      pbxgate web user role anna admin
    """
    from pbxgate.web.users import Role  # noqa: PLC0415

    with _store(app) as store:
        store.set_role(name, Role(role))
        store.audit(_operator(), "user-role", f"{name} to {role}")
    click.echo(f"{name} is now {role}")


@user.command("logout")
@click.argument("name")
@pass_app
def user_logout(app: AppContext, name: str) -> None:
    """End every session of a user, in every browser (a lost phone, a shared computer); the
    user logs in again. Their password and API tokens stay.

    \b
    Example:
      pbxgate web user logout anna
    """
    with _store(app) as store:
        store.end_sessions(name)
        store.audit(_operator(), "user-logout", name)
    click.echo(f"every session of {name} has ended")


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


@web.group()
def token() -> None:
    """API tokens: let a script (a CRM, Grafana) read the console's /api/ as a user.

    A token is sent as `Authorization: Bearer TOKEN`, works only for GET requests under /api/
    and may do at most its --role (viewer unless given) and its user's role. It is printed
    once, when made; only its SHA-256 is kept. Removing it, or its user, revokes it at once.
    The console's /api page lists every endpoint; /api/openapi.json describes them (OpenAPI).

    \b
    Examples:
      pbxgate web token add grafana --label dashboards
      curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/today
      pbxgate web token list
      pbxgate web token remove 3
    """


@token.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True,
              help="The most the token may do (never more than its user).")  # fmt: skip
@click.option("--label", default="", help="What the token is for, e.g. grafana or crm.")
@pass_app
def token_add(app: AppContext, name: str, role: str, label: str) -> None:
    """Make an API token for user NAME and print it (once: it is not kept).

    \b
    Example:
      pbxgate web token add grafana --label dashboards > grafana.token
    """
    from pbxgate.web.users import Role  # noqa: PLC0415

    with _store(app) as store:
        made, secret = store.add_token(name, Role(role), label)
        detail = f"#{made.id} for {name} as {role}" + (f" ({made.label})" if made.label else "")
        store.audit(_operator(), "token-add", detail)
    click.echo(secret)
    click.echo(f"token #{made.id} for {name} as {role}: shown only now, keep it safe", err=True)


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per token.")
@pass_app
def token_list(app: AppContext, as_json: bool) -> None:
    """The API tokens: number, user, role, label, when made and last used (never the secret).

    \b
    Example:
      pbxgate web token list
      #3   grafana          viewer    dashboards       added 2026-12-01 09:00  never used
    """
    with _store(app) as store:
        found = store.tokens()
    for t in found:
        if as_json:
            used = t.last_used.isoformat() if t.last_used else None
            click.echo(json.dumps({"id": t.id, "user": t.user, "role": t.role.value,
                                   "label": t.label, "created": t.created.isoformat(),
                                   "last_used": used}, ensure_ascii=False))  # fmt: skip
            continue
        when = f"used {t.last_used:%Y-%m-%d %H:%M}" if t.last_used else "never used"
        click.echo(f"#{t.id:<3} {t.user:<16} {t.role.value:<9} {t.label or '-':<16} "
                   f"added {t.created:%Y-%m-%d %H:%M}  {when}")  # fmt: skip
    if not found and not as_json:
        click.echo("no API tokens: make one with pbxgate web token add NAME", err=True)


@token.command("remove")
@click.argument("token_id", metavar="ID", type=int)
@pass_app
def token_remove(app: AppContext, token_id: int) -> None:
    """Revoke API token number ID (see `pbxgate web token list`); it stops working at once.

    \b
    Example:
      pbxgate web token remove 3
    """
    with _store(app) as store:
        gone = store.remove_token(token_id)
        store.audit(_operator(), "token-remove", f"#{gone.id} of {gone.user}")
    click.echo(f"removed token #{gone.id} of {gone.user}")


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
