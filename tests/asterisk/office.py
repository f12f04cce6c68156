"""A small office on a real Asterisk, and the calls it makes: the truth the CDR tests assert.

Two Asterisk instances run side by side, joined by IAX2 on loopback:

* ``pbx`` is the office's PBX, configured the way FreePBX configures one (``from-trunk``,
  ``from-pstn``, ``from-did-direct``, ``ext-group``, ``ext-queues``/``from-queue``,
  ``from-internal``, MixMonitor recordings under ``YYYY/MM/DD``). It writes its CDRs through
  cdr_csv, cdr_custom, cdr_sqlite3_custom and cdr_adaptive_odbc into MariaDB (FreePBX's table)
  and PostgreSQL (Asterisk's alembic table).
* ``world`` is everything around it: the callers on the PSTN, the office's phones (IAX2 peers
  101-105, so the PBX sees ``IAX2/101-...`` channels as it would see ``PJSIP/101-...``) and the
  numbers the office calls. What a phone or an outside number does (answer after N seconds,
  busy, no answer, congestion, a hangup cause) is set per scenario in the world's AstDB.

Each :class:`Scenario` says what to set up, which call to place (AMI ``Originate`` of a Local
channel on the world side), what to do during the call (a blind or attended transfer through
the PBX's AMI, a pickup from another phone) and what the call *is*: direction, outcome, who
answered and through which group or queue, ring and talk seconds, recording, DID. Scenarios run
one after another with a gap of over a second, so each call is found by its start time.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text

from tests.asterisk.instance import Ami, AsteriskError, Instance, asterisk_prefix, free_port

DID_PREFIX = "7495111"
PHONES = ("101", "102", "103", "104", "105")
AGENT_NAMES = {"101": "Анна Смирнова", "102": "Борис Петров", "103": "Вера Иванова"}
# queue members (conf/pbx/queues.conf); 103 joins and leaves queue 700 in a scenario
B_MEMBER, V_MEMBER = "Local/102@from-queue/n", "Local/103@from-queue/n"


@dataclass(frozen=True)
class Truth:
    """What a call is, as the office knows it."""

    direction: str
    outcome: str
    src: str
    did: str = ""
    answered_by: str = ""  # the person (extension) who picked up first; for outbound the number
    answered_via: str = ""  # the ring group or queue it came through
    talked: tuple[str, ...] = ()  # everyone the caller talked to, in order (transfers)
    # Seconds from the start until a person answered (or until the end, unanswered), and from
    # then to the end: what the call was planned to take; Office.measure replaces them with
    # what the world saw, to the microsecond, which the tests compare with (within 1 s).
    ring: float = 0.0
    talk: float = 0.0
    recorded: bool = False
    no_number: bool = False


@dataclass
class Scenario:
    name: str
    truth: Truth
    call: dict[str, str]  # USER, TARGET, CID_NUM, CID_NAME, CID_PRES, GIVEUP, TALK
    phones: dict[str, str] = field(default_factory=dict)  # extension -> behaviour
    pstn: dict[str, str] = field(default_factory=dict)  # outside number -> behaviour
    during: Callable[[Office], None] | None = None
    before: Callable[[Office], None] | None = None  # before the call is placed
    after: Callable[[Office], None] | None = None  # once every channel is gone
    started: float = 0.0  # wall-clock seconds, set when run
    finished: float = 0.0


def _inbound(caller: str, did: str, *, name: str = "", pres: str = "", giveup: str = "",
             talk: str = "") -> dict[str, str]:  # fmt: skip
    return {"USER": "trunk", "TARGET": did, "CID_NUM": caller, "CID_NAME": name,
            "CID_PRES": pres, "GIVEUP": giveup, "TALK": talk or "600"}  # fmt: skip


def _from_phone(ext: str, target: str, *, giveup: str = "", talk: str = "") -> dict[str, str]:
    return {"USER": ext, "TARGET": target, "CID_NUM": ext, "CID_NAME": AGENT_NAMES.get(ext, ""),
            "CID_PRES": "", "GIVEUP": giveup, "TALK": talk or "600"}  # fmt: skip


def _after(seconds: float, action: Callable[[Office], None]) -> Callable[[Office], None]:
    def run(office: Office) -> None:
        time.sleep(seconds)
        action(office)

    return run


def _blind_transfer(to: str) -> Callable[[Office], None]:
    def run(office: Office) -> None:
        chan = office.pbx_talking("IAX2/101-")
        _manager("BlindTransfer", Channel=chan, Exten=to, Context="from-internal")(office)

    return run


def _attended_transfer(to: str) -> Callable[[Office], None]:
    def run(office: Office) -> None:
        chan = office.pbx_talking("IAX2/101-")
        _manager("Atxfer", Channel=chan, Exten=to, Context="from-internal")(office)

    return run


def _manager(action: str, **fields: str) -> Callable[[Office], None]:
    """An action on the PBX's manager (a queue member paused, added, removed)."""

    def run(office: Office) -> None:
        reply = office.pbx_ami.action(action, **fields)
        if reply.get("Response") != "Success":
            raise AsteriskError(f"{action} refused: {reply.get('Message')}")

    return run


def _queue_transfer(agent: str, to: str) -> Callable[[Office], None]:
    """The agent's side of the queue's bridge (the member's Local channel) blind-transfers the
    caller, as a phone's transfer key does through the member channel."""

    def run(office: Office) -> None:
        chan = office.pbx_talking(f"Local/{agent}@from-queue-")
        _manager("BlindTransfer", Channel=chan.replace(";2", ";1"), Exten=to,
                 Context="from-internal")(office)  # fmt: skip

    return run


def _pickup(by: str, ringing: str) -> Callable[[Office], None]:
    def run(office: Office) -> None:
        office.pbx_ringing(f"IAX2/{ringing}-")
        office.originate(_from_phone(by, f"**{ringing}", talk="3"))

    return run


def scenarios() -> list[Scenario]:
    """The office's day, one call each; the truth is what the office would say of it."""
    d = DID_PREFIX
    group, hunt, queue, linear = f"{d}0600", f"{d}0601", f"{d}0700", f"{d}0701"
    return [
        Scenario("ring group ringall, answered by 102",
                 Truth("inbound", "ANSWERED", "84991000001", group, "102", "600", ("102",),
                       ring=2, talk=3),
                 _inbound("84991000001", group, name="Олег Иванов", talk="3"),
                 phones={"101": "noanswer", "102": "answer:2", "103": "noanswer"}),
        Scenario("ring group ringall, nobody answers",
                 Truth("inbound", "NO ANSWER", "84991000002", group, ring=8),
                 _inbound("84991000002", group),
                 phones={"101": "noanswer", "102": "noanswer", "103": "noanswer"}),
        Scenario("ring group ringall, every phone busy",
                 Truth("inbound", "BUSY", "84991000003", group),
                 _inbound("84991000003", group),
                 phones={"101": "busy", "102": "busy", "103": "busy"}),
        Scenario("ring group hunt, answered by the second phone",
                 Truth("inbound", "ANSWERED", "84991000004", hunt, "102", "601", ("102",),
                       ring=5, talk=3),
                 _inbound("84991000004", hunt, talk="3"),
                 phones={"101": "noanswer", "102": "answer:1", "103": "noanswer"}),
        Scenario("queue, answered by an agent",
                 Truth("inbound", "ANSWERED", "84991000005", queue, "101", "700", ("101",),
                       ring=2.5, talk=2.5),  # Answer() takes 0.5 s, then the agent rings 2 s
                 _inbound("84991000005", queue, talk="5"),
                 phones={"101": "answer:2", "102": "noanswer"}),
        Scenario("queue, caller abandons while waiting",
                 Truth("inbound", "NO ANSWER", "84991000006", queue, ring=4),
                 _inbound("84991000006", queue, talk="4"),
                 phones={"101": "noanswer", "102": "noanswer"}),
        Scenario("queue, times out",
                 Truth("inbound", "NO ANSWER", "84991000007", queue, ring=10),
                 _inbound("84991000007", queue),
                 phones={"101": "noanswer", "102": "noanswer"}),
        Scenario("queue, an agent on a break (paused): the other answers",
                 Truth("inbound", "ANSWERED", "84991000018", queue, "101", "700", ("101",),
                       ring=2.5, talk=2.5),
                 _inbound("84991000018", queue, talk="5"),
                 phones={"101": "answer:2", "102": "answer:1"},
                 before=_manager("QueuePause", Queue="700", Interface=B_MEMBER, Paused="true",
                                 Reason="lunch"),
                 after=_manager("QueuePause", Queue="700", Interface=B_MEMBER, Paused="false")),
        Scenario("queue, linear: the first agent does not answer, the second does",
                 Truth("inbound", "ANSWERED", "84991000019", linear, "102", "701", ("102",),
                       ring=5.5, talk=2.5),
                 _inbound("84991000019", linear, talk="8"),
                 phones={"101": "noanswer", "102": "answer:1"}),
        Scenario("queue, an agent logs in, takes the call, logs off",
                 Truth("inbound", "ANSWERED", "84991000020", queue, "103", "700", ("103",),
                       ring=1.5, talk=3.5),
                 _inbound("84991000020", queue, talk="5"),
                 phones={"101": "noanswer", "102": "noanswer", "103": "answer:1"},
                 before=_manager("QueueAdd", Queue="700", Interface=V_MEMBER,
                                 MemberName=AGENT_NAMES["103"], StateInterface="IAX2/103"),
                 after=_manager("QueueRemove", Queue="700", Interface=V_MEMBER)),
        Scenario("queue, the agent transfers the caller to 103",
                 Truth("inbound", "ANSWERED", "84991000021", queue, "101", "700",
                       ("101", "103"), ring=1.5, talk=8),
                 _inbound("84991000021", queue, talk="9"),
                 phones={"101": "answer:1", "102": "noanswer", "103": "answer:1"},
                 during=_after(4, _queue_transfer("101", "103"))),
        Scenario("direct DID, recorded, answered",
                 Truth("inbound", "ANSWERED", "84991000008", f"{d}0101", "101", "", ("101",),
                       ring=2, talk=4, recorded=True),
                 _inbound("84991000008", f"{d}0101", name="ООО Ромашка", talk="4"),
                 phones={"101": "answer:2"}),
        Scenario("direct DID, extension busy",
                 Truth("inbound", "BUSY", "84991000009", f"{d}0104", recorded=True),
                 _inbound("84991000009", f"{d}0104"),
                 phones={"104": "busy"}),
        Scenario("direct DID, do-not-disturb (Busy() in the dialplan)",
                 Truth("inbound", "BUSY", "84991000016", f"{d}0199"),
                 _inbound("84991000016", f"{d}0199")),
        Scenario("direct DID, no answer",
                 Truth("inbound", "NO ANSWER", "84991000010", f"{d}0105", ring=8, recorded=True),
                 _inbound("84991000010", f"{d}0105"),
                 phones={"105": "noanswer"}),
        Scenario("caller gives up while it rings",
                 Truth("inbound", "NO ANSWER", "84991000011", f"{d}0105", ring=3, recorded=True),
                 _inbound("84991000011", f"{d}0105", giveup="3"),
                 phones={"105": "noanswer"}),
        Scenario("caller with no number, missed",
                 Truth("inbound", "NO ANSWER", "", f"{d}0105", ring=3, recorded=True,
                       no_number=True),
                 _inbound("", f"{d}0105", giveup="3"),
                 phones={"105": "noanswer"}),
        Scenario("caller 'anonymous', missed",
                 Truth("inbound", "NO ANSWER", "anonymous", f"{d}0105", ring=3, recorded=True,
                       no_number=True),
                 _inbound("anonymous", f"{d}0105", giveup="3"),
                 phones={"105": "noanswer"}),
        Scenario("caller 'Restricted', answered",
                 Truth("inbound", "ANSWERED", "Restricted", f"{d}0101", "101", "", ("101",),
                       ring=1, talk=2, recorded=True, no_number=True),
                 _inbound("Restricted", f"{d}0101", talk="2"),
                 phones={"101": "answer:1"}),
        Scenario("caller 'Unknown', answered",
                 Truth("inbound", "ANSWERED", "Unknown", f"{d}0101", "101", "", ("101",),
                       ring=1, talk=2, recorded=True, no_number=True),
                 _inbound("Unknown", f"{d}0101", talk="2"),
                 phones={"101": "answer:1"}),
        Scenario("internal call, answered",
                 Truth("internal", "ANSWERED", "101", "", "102", "", ("102",), ring=1, talk=2),
                 _from_phone("101", "102", talk="2"),
                 phones={"102": "answer:1"}),
        Scenario("internal call, busy",
                 Truth("internal", "BUSY", "101"),
                 _from_phone("101", "104"),
                 phones={"104": "busy"}),
        Scenario("outbound, answered",
                 Truth("outbound", "ANSWERED", "101", "", "89161000001", "", ("89161000001",),
                       ring=2, talk=3),
                 _from_phone("101", "89161000001", talk="3"),
                 pstn={"89161000001": "answer:2"}),
        Scenario("outbound, busy",
                 Truth("outbound", "BUSY", "101"),
                 _from_phone("101", "89161000002"),
                 pstn={"89161000002": "busy"}),
        Scenario("outbound, congestion",
                 Truth("outbound", "CONGESTION", "101"),
                 _from_phone("101", "89161000003"),
                 pstn={"89161000003": "congestion"}),
        Scenario("outbound, failed (no route to the number)",
                 Truth("outbound", "FAILED", "101"),
                 _from_phone("101", "89161000004"),
                 pstn={"89161000004": "cause:3"}),
        Scenario("blind transfer 101 -> 102",
                 Truth("inbound", "ANSWERED", "84991000012", f"{d}0101", "101", "",
                       ("101", "102"), ring=1, talk=8, recorded=True),
                 _inbound("84991000012", f"{d}0101", talk="8"),
                 phones={"101": "answer:1", "102": "answer:1"},
                 during=_after(3, _blind_transfer("102"))),
        Scenario("attended transfer 101 -> 102",
                 Truth("inbound", "ANSWERED", "84991000013", f"{d}0101", "101", "",
                       ("101", "102"), ring=1, talk=10, recorded=True),
                 _inbound("84991000013", f"{d}0101", talk="10"),
                 phones={"101": "answer:1:7", "102": "answer:1"},
                 during=_after(2.5, _attended_transfer("102"))),
        Scenario("call pickup: 103 rings, 102 picks it up",
                 Truth("inbound", "ANSWERED", "84991000014", f"{d}0103", "102", "", ("102",),
                       ring=2, talk=3, recorded=True),
                 _inbound("84991000014", f"{d}0103"),
                 phones={"103": "noanswer"},
                 during=_after(2, _pickup("102", "103"))),
        # The PBX itself ends the call before anything rings: no answer and no hangup cause,
        # which Asterisk's CDR engine finalises as FAILED (main/cdr.c).
        Scenario("the PBX hangs up 50 ms into the AGI script",
                 Truth("inbound", "FAILED", "84991000017", f"{d}0198"),
                 _inbound("84991000017", f"{d}0198")),
        Scenario("missed, to be called back",
                 Truth("inbound", "NO ANSWER", "84991000015", f"{d}0105", ring=3, recorded=True),
                 _inbound("84991000015", f"{d}0105", giveup="3"),
                 phones={"105": "noanswer"}),
        Scenario("call-back of the missed call",
                 Truth("outbound", "ANSWERED", "101", "", "84991000015", "", ("84991000015",),
                       ring=1, talk=2),
                 _from_phone("101", "84991000015", talk="2"),
                 pstn={"84991000015": "answer:1"}),
    ]  # fmt: skip


class Databases:
    """The tables cdr_adaptive_odbc writes: FreePBX's in MariaDB, Asterisk's in PostgreSQL."""

    FREEPBX = """CREATE TABLE {table} (
      calldate datetime NOT NULL DEFAULT '1000-01-01 00:00:00',
      clid varchar(80) NOT NULL DEFAULT '', src varchar(80) NOT NULL DEFAULT '',
      dst varchar(80) NOT NULL DEFAULT '', dcontext varchar(80) NOT NULL DEFAULT '',
      channel varchar(80) NOT NULL DEFAULT '', dstchannel varchar(80) NOT NULL DEFAULT '',
      lastapp varchar(80) NOT NULL DEFAULT '', lastdata varchar(80) NOT NULL DEFAULT '',
      duration int(11) NOT NULL DEFAULT 0, billsec int(11) NOT NULL DEFAULT 0,
      disposition varchar(45) NOT NULL DEFAULT '', amaflags int(11) NOT NULL DEFAULT 0,
      accountcode varchar(20) NOT NULL DEFAULT '', uniqueid varchar(32) NOT NULL DEFAULT '',
      userfield varchar(255) NOT NULL DEFAULT '', did varchar(50) NOT NULL DEFAULT '',
      recordingfile varchar(255) NOT NULL DEFAULT '', cnum varchar(80) NOT NULL DEFAULT '',
      cnam varchar(80) NOT NULL DEFAULT '', outbound_cnum varchar(80) NOT NULL DEFAULT '',
      outbound_cnam varchar(80) NOT NULL DEFAULT '', dst_cnam varchar(80) NOT NULL DEFAULT '',
      linkedid varchar(32) NOT NULL DEFAULT '', peeraccount varchar(80) NOT NULL DEFAULT '',
      sequence int(11) NOT NULL DEFAULT 0,
      KEY calldate (calldate), KEY dst (dst), KEY accountcode (accountcode),
      KEY uniqueid (uniqueid), KEY did (did), KEY recordingfile (recordingfile(191)),
      KEY linkedid (linkedid)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""

    ALEMBIC = """CREATE TABLE {table} (
      accountcode varchar(80), src varchar(80), dst varchar(80), dcontext varchar(80),
      clid varchar(80), channel varchar(80), dstchannel varchar(80), lastapp varchar(80),
      lastdata varchar(80), start timestamp, answer timestamp, "end" timestamp,
      duration integer, billsec integer, disposition varchar(45), amaflags varchar(45),
      userfield varchar(256), uniqueid varchar(150), linkedid varchar(150),
      peeraccount varchar(80), sequence integer
    )"""

    def __init__(self, mariadb_dsn: str, postgresql_dsn: str, table: str = "") -> None:
        self.mariadb_dsn = mariadb_dsn
        self.postgresql_dsn = postgresql_dsn
        # A table of this run's own: two runs (a developer's and CI's) may share a server.
        self.table = table or f"e2e_cdr_{secrets.token_hex(4)}"

    def _each(self) -> list[tuple[str, str]]:
        return [(self.mariadb_dsn, self.FREEPBX), (self.postgresql_dsn, self.ALEMBIC)]

    def create(self) -> None:
        for dsn, ddl in self._each():
            engine = create_engine(dsn)
            with engine.begin() as conn:
                conn.execute(text(f"DROP TABLE IF EXISTS {self.table}"))
                conn.execute(text(ddl.format(table=self.table)))
            engine.dispose()

    def drop(self) -> None:
        for dsn, _ in self._each():
            engine = create_engine(dsn)
            with engine.begin() as conn:
                conn.execute(text(f"DROP TABLE IF EXISTS {self.table}"))
            engine.dispose()

    def substitutions(self) -> dict[str, str]:
        maria, pg = urlsplit(self.mariadb_dsn), urlsplit(self.postgresql_dsn)
        return {
            "MARIADB_DRIVER": "MariaDB Unicode",
            "MARIADB_HOST": maria.hostname or "127.0.0.1",
            "MARIADB_PORT": str(maria.port or 3306),
            "MARIADB_USER": maria.username or "root",
            "MARIADB_PASSWORD": maria.password or "",
            "MARIADB_DATABASE": maria.path.lstrip("/"),
            "MARIADB_TABLE": self.table,
            "POSTGRESQL_DRIVER": "PostgreSQL Unicode",
            "POSTGRESQL_HOST": pg.hostname or "127.0.0.1",
            "POSTGRESQL_PORT": str(pg.port or 5432),
            "POSTGRESQL_USER": pg.username or "postgres",
            "POSTGRESQL_PASSWORD": pg.password or "",
            "POSTGRESQL_DATABASE": pg.path.lstrip("/"),
            "POSTGRESQL_TABLE": self.table,
        }


class Office:
    """The two instances, their AMI connections, and the scenario runner."""

    def __init__(
        self,
        root: Path,
        databases: Databases,
        extra: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        prefix = asterisk_prefix()
        secret = secrets.token_hex(8)
        self.ami_secret = secret
        udp = socket.SOCK_DGRAM
        world_iax, pbx_iax = free_port(udp), free_port(udp)
        devices = {f"{side}_PORT_{dev}": str(free_port(udp))
                   for dev in ("trunk", *PHONES) for side in ("WORLD", "PBX")}  # fmt: skip
        self.ports = {"world_ami": free_port(), "pbx_ami": free_port()}
        common = {"AMI_SECRET": secret, **devices, **databases.substitutions(), **(extra or {})}
        self.world = Instance("world", prefix, root / "world", {
            **common, "IAX_PORT": str(world_iax), "PBX_IAX_PORT": str(pbx_iax),
            "AMI_PORT": str(self.ports["world_ami"])})  # fmt: skip
        self.pbx = Instance("pbx", prefix, root / "pbx", {
            **common, "IAX_PORT": str(pbx_iax), "WORLD_IAX_PORT": str(world_iax),
            "AMI_PORT": str(self.ports["pbx_ami"])})  # fmt: skip
        self.pbx.env.update(env or {})  # a process AGI inherits Asterisk's environment
        self.databases = databases
        self.world_ami: Ami
        self.pbx_ami: Ami

    def start(self) -> None:
        self.databases.create()
        self.world.start()
        self.pbx.start()
        self.world_ami = Ami(self.ports["world_ami"], "pbxgate", self.ami_secret)
        self.pbx_ami = Ami(self.ports["pbx_ami"], "pbxgate", self.ami_secret)
        self.warm_up()

    def warm_up(self) -> None:
        """One busy call over each IAX2 port pair, both ways, before the scenarios: chan_iax2
        drops the first NEW of a fresh pair when several go out at once, and resends it 2 s
        later, which would show as 2 s of extra ringing in the first ring group call."""
        for ext in PHONES:
            self.world.cli(f"database put phone {ext} busy")
        self.world.cli("database put pstn 89160000000 busy")
        calls = [_inbound("84990000000", f"{DID_PREFIX}0{ext}") for ext in PHONES]
        calls += [_from_phone(ext, "89160000000") for ext in PHONES]
        for call in calls:
            self.originate(call)
            time.sleep(0.2)
            self.wait_idle()
        self.world.cli("database deltree phone")
        self.world.cli("database deltree pstn")
        time.sleep(1.1)  # the first scenario starts in a later second than any warm-up leg

    def stop(self) -> None:
        for ami in ("world_ami", "pbx_ami"):
            if hasattr(self, ami):
                getattr(self, ami).close()
        self.pbx.stop()
        self.world.stop()

    # -- during a call
    def originate(self, call: dict[str, str]) -> None:
        reply = self.world_ami.action(
            "Originate", call, Channel="Local/dial@world-caller/n", Application="Wait",
            Data="120", Async="true")  # fmt: skip
        if reply.get("Response") != "Success":
            raise AsteriskError(f"originate refused: {reply.get('Message')}")

    def pbx_talking(self, prefix: str, timeout: float = 15.0) -> str:
        """The PBX channel named ``prefix``* once it is up and in a bridge: a transfer asked
        for earlier is refused (a loaded machine can take longer than a scenario's seconds to
        put the call through), and the call would go on untransferred."""
        return self._pbx_channel(prefix, "talking", lambda f: f[4] == "Up" and bool(f[-2]),
                                 timeout)  # fmt: skip

    def pbx_ringing(self, prefix: str, timeout: float = 15.0) -> str:
        """The PBX channel named ``prefix``* once it rings: a pickup dialled earlier finds
        nothing to pick up (the PBX runs the AGI script and starts recording first, longer
        on a loaded machine), and the call would go unanswered."""
        return self._pbx_channel(prefix, "ringing", lambda f: f[4] == "Ringing", timeout)

    def _pbx_channel(
        self, prefix: str, what: str, state: Callable[[list[str]], bool], timeout: float
    ) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.pbx.cli("core show channels concise").splitlines():
                # Channel!Context!Exten!Priority!State!...!BridgeID!Uniqueid (main/cli.c)
                fields = line.split("!")
                if fields[0].startswith(prefix) and len(fields) >= 14 and state(fields):
                    return fields[0]
            time.sleep(0.1)
        raise AsteriskError(f"no PBX channel {prefix}* {what} in {timeout:g} s")

    def wait_manager_sessions(self, user: str, count: int, timeout: float = 60.0) -> None:
        """Until ``count`` sessions of ``user`` are logged in to the PBX's manager."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # "  Username  IP Address  Start ..." a session a line (main/manager.c)
            lines = self.pbx.cli("manager show connected").splitlines()
            if sum(line.split()[:1] == [user] for line in lines) >= count:
                return
            time.sleep(0.2)
        raise AsteriskError(f"fewer than {count} manager sessions of {user} after {timeout:g} s")

    def active(self) -> int:
        total = 0
        for inst in (self.pbx, self.world):
            out = inst.cli("core show channels count")
            for line in out.splitlines():
                if "active channel" in line:
                    total += int(line.split()[0])
        return total

    def wait_idle(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.active() == 0:
                return
            time.sleep(0.2)
        raise AsteriskError(f"calls still up after {timeout} s")

    def measure(self, lo: float, hi: float) -> dict[str, float]:
        """Ring and talk seconds as the world saw them (AMI event stamps, in microseconds):
        the caller's IAX2 channel is the slot's first; the caller is connected to a person
        when both the caller's channel and another IAX2 channel of the world (a phone, the
        PSTN number, a phone picking up) are Up: the later of the caller's own answer (a queue
        answers the caller before any agent does) and the first other one; the end is the
        caller's hangup."""
        events = self.world_ami.events_between(lo - 0.5, hi + 0.5)
        iax = [e for e in events if e.get("Channel", "").startswith("IAX2/")]
        news = [e for e in iax if e["Event"] == "Newchannel"]
        if not news:
            raise AsteriskError("the world saw no IAX2 channel for this call")
        caller = news[0]["Channel"]
        start = float(news[0]["Timestamp"])
        ups = [e for e in iax if e["Event"] == "Newstate" and e.get("ChannelState") == "6"]
        others = [float(e["Timestamp"]) for e in ups if e["Channel"] != caller]
        mine = [float(e["Timestamp"]) for e in ups if e["Channel"] == caller]
        end = next(float(e["Timestamp"]) for e in iax
                   if e["Event"] == "Hangup" and e["Channel"] == caller)  # fmt: skip
        answer = max(min(others), min(mine)) if others and mine else None
        if answer is None or answer > end:
            return {"ring": round(end - start, 3), "talk": 0.0}
        return {"ring": round(answer - start, 3), "talk": round(end - answer, 3)}

    def run(self, plan: list[Scenario]) -> list[Scenario]:
        for sc in plan:
            for ext, how in sc.phones.items():
                self.world.cli(f"database put phone {ext} {how}")
            for number, how in sc.pstn.items():
                self.world.cli(f"database put pstn {number} {how}")
            if sc.before is not None:
                sc.before(self)
            sc.started = time.time()
            self.originate(sc.call)
            if sc.during is not None:
                sc.during(self)
            time.sleep(0.5)
            self.wait_idle()
            sc.finished = time.time()
            if sc.after is not None:
                sc.after(self)
            sc.truth = replace(sc.truth, **self.measure(sc.started, sc.finished))
            self.world.cli("database deltree phone")
            self.world.cli("database deltree pstn")
            time.sleep(1.1)  # the next call starts in a later second than any leg of this one
        return plan


def slot_of(plan: list[Scenario], start: datetime) -> Scenario | None:
    """The scenario whose time slot holds a call that started at ``start`` (local time)."""
    stamp = start.timestamp()
    found = None
    for sc in plan:
        if int(sc.started) <= stamp:
            found = sc
    return found


__all__ = ["Databases", "Office", "Scenario", "Truth", "scenarios", "slot_of"]
