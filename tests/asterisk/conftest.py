"""The office on a real Asterisk, run once per test session (about three minutes)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.asterisk.office import Databases, Office, Scenario, scenarios
from tests.conftest import require_dsn


@dataclass
class OfficeRun:
    plan: list[Scenario]
    pbx: Path  # the PBX's runtime tree: log/cdr-csv, log/cdr-custom, log/master.db, spool/monitor
    mariadb_dsn: str
    postgresql_dsn: str

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
        times = json.loads((Path(reuse) / "plan.json").read_text())
        for sc in plan:
            sc.started, sc.finished, ring, talk = times[sc.name]
            sc.truth = replace(sc.truth, ring=ring, talk=talk)
        yield OfficeRun(plan, Path(reuse) / "pbx", maria, pg)
        return
    root = tmp_path_factory.mktemp("office")
    office = Office(root, Databases(maria, pg))
    office.start()
    try:
        office.run(plan)
    finally:
        office.stop()
    times = {sc.name: [sc.started, sc.finished, sc.truth.ring, sc.truth.talk] for sc in plan}
    (root / "plan.json").write_text(json.dumps(times, ensure_ascii=False, indent=1))
    yield OfficeRun(plan, office.pbx.run, maria, pg)
