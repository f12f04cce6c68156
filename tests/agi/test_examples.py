"""The dialplan examples name routes and parameters that pbxgate actually serves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pbxgate.agi.calls import ROUTES, parse_request
from pbxgate.agi.protocol import Environment

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "asterisk").glob("*.conf"))
DOCS = ROOT / "docs" / "agi.md"
SAMPLE = {"DIALSTATUS": "NOANSWER", "CHANNEL(linkedid)": "1700000000.1"}


def _expand(text: str) -> str:
    """Replace ${...} (innermost first) with sample values, as Asterisk would."""
    pattern = re.compile(r"\$\{([^{}]*)\}")
    while pattern.search(text):
        text = pattern.sub(lambda m: SAMPLE.get(m.group(1), "74951234567"), text)
    return text


def _agi_calls(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith((";", "#"))]
    return re.findall(r"AGI\((.*)\)\s*$", "\n".join(lines), re.MULTILINE)


def test_there_are_examples():
    assert len(EXAMPLES) >= 3
    assert any(_agi_calls(p) for p in EXAMPLES)


@pytest.mark.parametrize("path", [*EXAMPLES, DOCS], ids=lambda p: p.name)
def test_every_agi_call_has_a_route(path):
    for call in _agi_calls(path):
        target, *args = _expand(call).split(",")
        if target.startswith(("agi://", "hagi://")):
            script = target.split("/", 3)[3]
            env = Environment({"agi_network": "yes", "agi_network_script": script})
        else:
            assert target == "/usr/local/bin/pbxgate-agi", call
            env = Environment({f"agi_arg_{i}": a for i, a in enumerate(args, start=1)})
        request = parse_request(env)  # raises RouteError for an unknown route
        assert request.kind in ROUTES.values()
        assert all(k in {"did", "linkedid", "dialstatus", "queue"} for k, _ in request.params)
