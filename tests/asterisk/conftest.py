"""The office on a real Asterisk, run once per test session (about three minutes)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.asterisk.live import LiveCalls, LiveStream
from tests.asterisk.live_page import LivePage
from tests.asterisk.office import Databases, Office, Scenario, scenarios
from tests.asterisk.pbxgate_side import WEB_PASSWORD, WEB_USER, PbxgateSide
from tests.conftest import require_dsn


@dataclass
class OfficeRun:
    plan: list[Scenario]
    pbx: Path  # the PBX's runtime tree: log/cdr-csv, log/cdr-custom, log/master.db, spool/monitor
    mariadb_dsn: str
    postgresql_dsn: str
    delivered: list[dict[str, Any]]  # the webhook bodies pbxgate serve delivered
    table: str  # this run's CDR table in both databases
    live: list[dict[str, Any]]  # the calls pbxgate's AMI tracker saw end (CallState fields)
    # what a second pbxgate serve, with [ami] enabled and no AGI in the dialplan, delivered
    ami_delivered: list[dict[str, Any]]
    # the calls that second serve's live-calls stream (its Unix socket) showed ending
    streamed: list[dict[str, Any]]
    # every change of the calls' table on the web console's Live page, open in Chromium during
    # the calls: of the FastAGI serve (fed by its FastAGI sessions) and of the AMI serve
    page_fastagi: list[dict[str, Any]]
    page_ami: list[dict[str, Any]]
    page_errors: list[str]  # script and console errors on either page
    # the PBX's AGIExecEnd events: every AGI command Asterisk ran, with its result
    agi_commands: list[dict[str, str]]

    @property
    def logs(self) -> Path:
        return self.pbx / "log"


@pytest.fixture(scope="session")
def office_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfficeRun]:
    maria = require_dsn("PBXGATE_TEST_MARIADB_DSN")
    pg = require_dsn("PBXGATE_TEST_POSTGRESQL_DSN")
    plan = scenarios()
    reuse = os.environ.get("PBXGATE_OFFICE_REUSE", "")
    if reuse:  # a developer's shortcut: the CDRs of an earlier run, kept in that folder
        saved = json.loads((Path(reuse) / "plan.json").read_text())
        for sc in plan:
            sc.started, sc.finished, ring, talk = saved["times"][sc.name]
            sc.truth = replace(sc.truth, ring=ring, talk=talk)
        yield OfficeRun(plan, Path(reuse) / "pbx", maria, pg, saved["delivered"], saved["table"],
                        saved.get("live", []), saved.get("ami_delivered", []),
                        saved.get("streamed", []), saved.get("page_fastagi", []),
                        saved.get("page_ami", []), saved.get("page_errors", []),
                        saved.get("agi_commands", []))  # fmt: skip
        return
    root = tmp_path_factory.mktemp("office")
    side = PbxgateSide(root / "pbxgate")
    subs = {"FASTAGI_PORT": str(side.port), "AGI_SCRIPT": str(side.agi_script)}
    databases = Databases(maria, pg)
    office = Office(root, databases, subs, side.env)
    # a second pbxgate with its own outbox and receiver that only follows the manager: what
    # it delivers is what AMI alone gives, with no AGI in the dialplan
    ami_side = PbxgateSide(root / "pbxgate-ami")
    ami_side.follow_ami(office.ports["pbx_ami"], office.ami_secret)
    pages = [LivePage(s.enable_web(), WEB_USER, WEB_PASSWORD) for s in (side, ami_side)]
    side.start()
    ami_side.start()
    try:
        office.start()
        # the AMI-only side, started before the PBX, tries again with a backoff: it follows
        # the manager (its session beside the office's own) before the first scenario
        office.wait_manager_sessions("pbxgate", 2)
        live = LiveCalls(office.ports["pbx_ami"], "pbxgate", office.ami_secret)
        stream = LiveStream(ami_side.live_socket)
        try:
            live.start()
            stream.start()
            for page in pages:
                page.start()
            try:
                office.run(plan)
            finally:
                live.stop()
                stream.stop()
                for page in pages:
                    page.stop()
        finally:
            office.stop()
        agi_commands = [e for e in office.pbx_ami.events if e.get("Event") == "AGIExecEnd"]
        side.wait_delivered()
        ami_side.wait_delivered()
    finally:
        side.stop()
        ami_side.stop()
    delivered = list(side.receiver.bodies)
    ami_delivered = list(ami_side.receiver.bodies)
    times = {sc.name: [sc.started, sc.finished, sc.truth.ring, sc.truth.talk] for sc in plan}
    saved = {"times": times, "delivered": delivered, "table": databases.table, "live": live.ended,
             "ami_delivered": ami_delivered, "streamed": stream.ended,
             "page_fastagi": pages[0].changes, "page_ami": pages[1].changes,
             "page_errors": pages[0].errors + pages[1].errors,
             "agi_commands": agi_commands}  # fmt: skip
    (root / "plan.json").write_text(json.dumps(saved, ensure_ascii=False, indent=1))
    yield OfficeRun(plan, office.pbx.run, maria, pg, delivered, databases.table, live.ended,
                    ami_delivered, stream.ended, pages[0].changes, pages[1].changes,
                    saved["page_errors"], agi_commands)  # fmt: skip
    if not os.environ.get("PBXGATE_OFFICE_KEEP"):  # kept for PBXGATE_OFFICE_REUSE
        databases.drop()
