"""The web console's Live page in Chromium while a real Asterisk takes the office's calls.

Both ``pbxgate serve`` processes beside the PBX ran the console (``[web] enabled``): the first
is fed by the FastAGI sessions the PBX's dialplan opens, the second by the PBX's manager (AMI)
alone. A Live page of each was open in Debian's Chromium for the whole run, and every change of
its table of calls was recorded with the browser's clock (``live_page.py``). The office's
calls are made one after another, each between its ``started`` and ``finished`` wall times.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.asterisk.conftest import OfficeRun
from tests.asterisk.live_page import appearances
from tests.asterisk.office import Scenario

pytestmark = [
    pytest.mark.asterisk,
    pytest.mark.mariadb,
    pytest.mark.postgresql,
    pytest.mark.browser,
]

# The page learns of a call through the console's event stream: allow for the browser's and
# the office's clocks being read at different moments, and for a busy machine.
SLACK = 1.0
GONE_WITHIN = 5.0  # seconds after the call's end by which the manager's page no longer lists it


def _inbound(run: OfficeRun) -> list[Scenario]:
    return [sc for sc in run.plan if sc.truth.direction == "inbound"]


def _during(seen: dict[str, Any], sc: Scenario) -> bool:
    return sc.started - SLACK <= seen["first"] <= sc.finished + SLACK


def _listed(page: dict[str, dict[str, Any]], sc: Scenario) -> list[dict[str, Any]]:
    """The calls the page first listed while ``sc`` was in progress, for its number dialled."""
    return [s for s in page.values() if _during(s, sc) and s["called"] == sc.truth.did]


def test_every_fastagi_call_appears_on_the_open_live_page_while_it_rings(
    office_run: OfficeRun,
) -> None:
    """The dialplan runs FastAGI for the ring-group and queue numbers: each such call shows on
    the open page, with the caller's number and the number dialled, while it is in progress."""
    page = appearances(office_run.page_fastagi)
    fastagi = [sc for sc in _inbound(office_run) if sc.truth.did[-3] != "1"]
    assert len(fastagi) >= 10
    for sc in fastagi:
        listed = _listed(page, sc)
        assert len(listed) == 1, (sc.name, listed, sc.started, sc.finished)
        call = listed[0]
        assert call["caller"] == ("" if sc.truth.no_number else sc.truth.src), sc.name
        assert call["source"] == "outbox" and call["states"][0] == "incoming", sc.name
    assert office_run.page_errors == []


def test_the_managers_page_shows_each_call_ringing_talking_and_gone(
    office_run: OfficeRun,
) -> None:
    """Fed by AMI, the page knows more than that a call came in: it rings, a person answers
    (the call is then talking, with who answered), and it leaves the table when it ends."""
    page = appearances(office_run.page_ami)
    inbound = [sc for sc in _inbound(office_run) if not sc.truth.no_number]
    assert len(inbound) >= 15
    for sc in inbound:
        listed = [s for s in page.values() if _during(s, sc) and s["caller"] == sc.truth.src]
        assert listed, (sc.name, sc.started, sc.finished)
        states = [state for call in listed for state in call["states"]]
        assert states[0] in ("ringing", "talking"), (sc.name, states)
        if sc.truth.outcome == "ANSWERED" and sc.truth.answered_by:
            assert "talking" in states, (sc.name, states)
        else:
            assert "talking" not in states, (sc.name, states)
        for call in listed:
            assert "gone" in call, (sc.name, call)
            assert call["gone"] <= sc.finished + GONE_WITHIN, (sc.name, call, sc.finished)
    assert office_run.page_errors == []
