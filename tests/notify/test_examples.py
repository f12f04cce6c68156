"""The shipped example configurations are valid: every section binds and the worker builds."""

import asyncio
import tomllib
from pathlib import Path
from typing import Any

from pbxgate.config import Settings
from pbxgate.notify.build import build_worker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "notify"


def inline_secrets(table: dict[str, Any]) -> dict[str, Any]:
    """Secrets from files/variables that exist only on a real PBX become inline test values."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out[key] = inline_secrets(value)
        elif key.endswith(("_file", "_env")) and key.rsplit("_", 1)[0] in ("token", "password"):
            out[key.rsplit("_", 1)[0]] = "example-secret-value"
        else:
            out[key] = value
    return out


def build(raw: dict[str, Any], tmp_path: Path) -> list[str]:
    raw = inline_secrets(raw)
    raw.setdefault("notify", {})["outbox"] = str(tmp_path / "o.sqlite3")
    worker, channels = build_worker(Settings(raw, environ={}))

    async def close() -> None:
        for ch in channels.values():
            await ch.aclose()

    asyncio.run(close())
    worker.outbox.close()
    return sorted(channels)


def test_full_example_builds(tmp_path: Path) -> None:
    raw = tomllib.loads((EXAMPLES / "config.toml").read_text(encoding="utf-8"))
    for name in ("telegram", "email", "webhook"):
        raw["notify"][name]["enabled"] = True
    assert build(raw, tmp_path) == ["email", "telegram", "vk", "webhook"]


def test_walkthrough_example_builds(tmp_path: Path) -> None:
    raw = tomllib.loads((EXAMPLES / "walkthrough.toml").read_text(encoding="utf-8"))
    assert build(raw, tmp_path) == ["vk"]
    assert raw["notify"]["vk"]["api_base"] == "http://127.0.0.1:8081"
