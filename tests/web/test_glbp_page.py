"""The GLBP page: a topology played on the console's clock (the simulator's own state, the
CLI's text), a running daemon through a fake control socket, and nothing configured."""

from __future__ import annotations

import asyncio
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pbxgate.cli.glbp import glbp
from pbxgate.cli.main import main
from pbxgate.config import Settings
from pbxgate.glbp.ios import EXEC, run
from pbxgate.glbp.sim import Simulation, load_topology
from pbxgate.web.app import create_app
from pbxgate.web.glbp import glbp_api, glbp_page, parse_brief
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import Role, UserStore
from tests.report.helpers import write_config
from tests.web.conftest import NOW, PASSWORDS, Clock, client, log_in
from tests.web.conftest import run as run_async

ARTICLE = Path(__file__).resolve().parents[2] / "examples" / "glbp" / "article.toml"
SVG = "{http://www.w3.org/2000/svg}"
ROLE = {"Active": "AVG", "Standby": "standby", "Listen": "listen"}


def make_console(tmp_path: Path, web: str = "") -> tuple[Any, Clock]:
    cfg = write_config(tmp_path, extra=f'[web]\ndatabase = "{tmp_path}/web.sqlite3"\n{web}')
    settings = Settings.load(cfg)
    users = UserStore(settings.get(WebSettings).database_path)
    users.add("vera", PASSWORDS["vera"], Role.VIEWER)
    clock = Clock()
    return create_app(settings, users=users, now=lambda: NOW, clock=clock), clock


def cli_sim(duration: float, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``pbxgate glbp sim article.toml --duration D`` prints."""
    assert main(["glbp", "sim", str(ARTICLE), "--duration", f"{duration:g}"]) == 0
    return capsys.readouterr().out


def cli_briefs(report: str) -> dict[str, str]:
    """Each router's ``show glbp brief`` at the end of a ``pbxgate glbp sim`` report."""
    end = report[report.index("=== ") :]
    parts = re.split(r"^(\w+)#show glbp brief\n", end, flags=re.M)[1:]
    briefs = {
        name: body.split("\n  packets sent")[0]
        for name, body in zip(parts[::2], parts[1::2], strict=True)
    }
    for off in re.finditer(r"^(\w+): powered off$", end, flags=re.M):
        briefs[off[1]] = "powered off"
    return briefs


def cli_hosts(report: str) -> dict[str, tuple[str | None, str | None]]:
    """Host -> (vMAC, forwarding router) from the report's closing Hosts list."""
    hosts = {}
    for m in re.finditer(
        r"^    (\S+)\s+\S+ -> (no answer|\S+)\s+(?:Fwd \d+ on (\S+)|no forwarder)", report, re.M
    ):
        hosts[m[1]] = (None if m[2] == "no answer" else m[2], m[3])
    return hosts


def svg_routers(svg: str) -> dict[str, tuple[str, str]]:
    """Router -> (role, all its text) as drawn."""
    tree = ET.fromstring(svg)
    out = {}
    for g in tree.iter(f"{SVG}g"):
        if g.get("class") == "router":
            text = " | ".join("".join(t.itertext()) for t in g.iter(f"{SVG}text"))
            out[g.get("data-router", "")] = (g.get("data-role", ""), text)
    return out


def expected_from_brief(brief: str) -> tuple[str, list[str]]:
    """A router's role and the AVFs it holds, read from its own ``show glbp brief``."""
    if brief == "powered off":
        return "off", []
    (group,) = parse_brief(brief)
    avfs = [f"AVF {f['number']} {f['vmac']}" for f in group["forwarders"] if f["state"] == "Active"]
    return ROLE.get(group["state"], group["state"].lower()), avfs


def get_json(app: Any, path: str, user: str = "vera") -> Any:
    async def go() -> Any:
        async with client(app) as http:
            await log_in(http, user)
            answer = await http.get(path)
            assert answer.status_code == 200
            return answer.json()

    return run_async(go())


# -- roles ---------------------------------------------------------------------------------


def test_roles(tmp_path: Path) -> None:
    assert glbp_page.role is Role.VIEWER and glbp_api.role is Role.VIEWER  # type: ignore[attr-defined]
    app, _ = make_console(tmp_path)

    async def go() -> None:
        async with client(app) as http:
            page = await http.get("/glbp")
            assert page.status_code == 303 and page.headers["location"] == "/login?next=/glbp"
            assert (await http.get("/api/glbp")).status_code == 401
            await log_in(http, "vera")
            assert (await http.get("/glbp")).status_code == 200
            assert (await http.get("/api/glbp")).status_code == 200

    run_async(go())


def test_nothing_configured_says_how(tmp_path: Path) -> None:
    app, _ = make_console(tmp_path)

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "vera")
            page = await http.get("/glbp", headers={"accept-language": "en"})
            assert 'id="glbp-unconfigured"' in page.text
            assert "glbp_topology = " in page.text and "glbp_control = " in page.text
            assert "glbp.js" not in page.text and 'http-equiv="refresh"' not in page.text
            state = (await http.get("/api/glbp")).json()
            assert state["configured"] is False and state["sources"] == []

    run_async(go())


# -- a topology played on the console's clock ------------------------------------------------


def play(app: Any, clock: Clock, moments: list[float]) -> list[dict[str, Any]]:
    """The simulation source at each console-clock offset, looked at in order."""
    start = clock.now

    async def go() -> list[dict[str, Any]]:
        seen = []
        async with client(app) as http:
            await log_in(http, "vera")
            for moment in moments:
                clock.now = start + moment
                state = (await http.get("/api/glbp")).json()
                (source,) = state["sources"]
                seen.append(source)
        return seen

    return run_async(go())


@pytest.mark.parametrize("speed", [1.0, 10.0])
def test_the_page_shows_what_the_simulator_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], speed: float
) -> None:
    app, clock = make_console(tmp_path, f'glbp_topology = "{ARTICLE}"\nglbp_speed = {speed}\n')
    # Stepped in stretches, as looks come: converged, the uplink lost, the AVG powered off.
    times = [35.0, 62.0, 150.0, 330.0]
    seen = play(app, clock, [t / speed for t in times])
    for at, source in zip(times, seen, strict=True):
        assert source["kind"] == "simulation" and source["error"] is None
        assert source["time"] == pytest.approx(at)
        report = cli_sim(at, capsys)
        briefs = {r["name"]: r["brief"] for r in source["routers"]}
        assert briefs == cli_briefs(report), at
        (group,) = source["groups"]
        hosts = {h["name"]: (h["vmac"], h["router"]) for h in group["hosts"]}
        assert hosts == cli_hosts(report)
        # The latest log lines are the report's own lines.
        assert source["log"] and all(line in report for line in source["log"])


def test_the_picture_shows_each_router_and_role_of_show_glbp_brief(
    tmp_path: Path,
) -> None:
    app, clock = make_console(tmp_path, f'glbp_topology = "{ARTICLE}"\n')
    for source in play(app, clock, [62.0, 150.0, 330.0]):
        drawn = svg_routers(source["svg"])
        assert set(drawn) == {"R2", "R3", "R4"}
        for router in source["routers"]:
            role, avfs = expected_from_brief(router["brief"])
            assert drawn[router["name"]][0] == role, (source["clock"], router["name"])
            for avf in avfs:
                assert avf in drawn[router["name"]][1]
        hosts = {g.get("data-host"): g.get("data-router") for g in ET.fromstring(
            source["svg"]).iter(f"{SVG}g") if g.get("class") == "host"}  # fmt: skip
        assert hosts == {h["name"]: h["router"] or "" for h in source["groups"][0]["hosts"]}
    # 150 s: R2's uplink is down, R4 forwards for two vMACs; 330 s: R2 is off, R4 is the AVG.
    assert svg_routers(source["svg"])["R4"][0] == "AVG"
    assert svg_routers(source["svg"])["R2"][0] == "off"


def test_the_play_starts_over_at_the_end_of_the_timeline(tmp_path: Path) -> None:
    app, clock = make_console(tmp_path, f'glbp_topology = "{ARTICLE}"\nglbp_speed = 100\n')
    duration = load_topology(ARTICLE).duration
    first, second = play(app, clock, [3.0, (duration + 35.0) / 100])
    assert first["round"] == 1 and first["time"] == pytest.approx(300.0)
    assert second["round"] == 2 and second["time"] == pytest.approx(35.0)
    assert second["clock"] == "00:00:35.000"


def test_the_page_renders_the_picture_and_the_briefs(tmp_path: Path) -> None:
    app, clock = make_console(tmp_path, f'glbp_topology = "{ARTICLE}"\n')
    clock.now += 150

    async def go() -> str:
        async with client(app) as http:
            await log_in(http, "vera")
            return (await http.get("/glbp", headers={"accept-language": "en"})).text

    page = run_async(go())
    assert '<script src="/static/glbp.js" defer></script>' in page
    assert '<noscript><meta http-equiv="refresh"' in page
    assert 'id="glbp-time-0">00:02:30.000<' in page
    svg = page[page.index("<svg") : page.index("</svg>") + 6]
    assert svg_routers(svg)["R2"][0] == "AVG"
    brief = re.search(r'<pre [^>]*id="glbp-brief-0-R4"[^>]*>(.*?)</pre>', page, re.S)
    assert brief is not None and "Et0/0       1    1   -   Active   0007.b400.0101" in brief[1]
    assert "%GLBP-6-FWDSTATECHANGE" in page  # the latest events
    assert "https://" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )


def test_a_topology_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = 1\n", encoding="utf-8")
    app, _ = make_console(tmp_path, f'glbp_topology = "{bad}"\n')
    (source,) = get_json(app, "/api/glbp")["sources"]
    assert source["error"] == f"{bad}: no [[router]] tables (add at least one router)"


# -- a running daemon through its control socket --------------------------------------------


class FakeDaemon:
    """A control socket speaking the daemon's protocol (one JSON object per line each way),
    answering with a simulated router's IOS state: what ``pbxgate glbp run`` would show."""

    def __init__(self, router: str, at: float) -> None:
        self.simulation = Simulation(load_topology(ARTICLE))
        self.simulation.run_until(at)
        self.ios = self.simulation.routers[router].ios
        self.lines: list[str] = []

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while raw := await reader.readline():
            line = str(json.loads(raw)["line"])
            self.lines.append(line)
            result = run(self.ios, EXEC, line)
            reply = {"output": result.output, "prompt": self.ios.prompt(EXEC)}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        writer.close()


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "glbp.sock"


def test_a_daemon_shows_the_cli_brief_and_its_picture(tmp_path: Path, socket_path: Path) -> None:
    fake = FakeDaemon("R4", 150.0)
    app, _ = make_console(tmp_path, f'glbp_control = "{socket_path}"\n')

    async def go() -> tuple[dict[str, Any], str, str]:
        server = await asyncio.start_unix_server(fake.session, path=str(socket_path))
        try:
            async with client(app) as http:
                await log_in(http, "vera")
                state = (await http.get("/api/glbp")).json()
                page = (await http.get("/glbp")).text
            cli = await asyncio.to_thread(
                CliRunner().invoke, glbp, ["show", "brief", "--control", str(socket_path)]
            )
            assert cli.exit_code == 0, cli.output
            return state, page, cli.output
        finally:
            server.close()
            await server.wait_closed()

    state, page, cli_output = run_async(go())
    (source,) = state["sources"]
    assert source["kind"] == "daemon" and source["error"] is None
    (router,) = source["routers"]
    assert router["name"] == "R4"
    assert router["brief"] + "\n" == cli_output  # the text `pbxgate glbp show brief` prints
    assert "show glbp brief" in fake.lines and "show glbp" in fake.lines
    drawn = svg_routers(source["svg"])
    # R4 knows itself by name, the others by the addresses its hellos came from.
    assert drawn["R4"][0] == "standby"
    assert "AVF 1 0007.b400.0101" in drawn["R4"][1] and "AVF 2 0007.b400.0102" in drawn["R4"][1]
    assert drawn["192.168.0.1"][0] == "AVG" and "priority 110" in drawn["192.168.0.1"][1]
    assert drawn["192.168.0.2"][0] == "listen" and "AVF 3 0007.b400.0103" in drawn["192.168.0.2"][1]
    assert "weight 100" in drawn["R4"][1]
    assert 'id="glbp-brief-0-R4"' in page


def test_a_daemon_that_is_gone_is_one_line(tmp_path: Path, socket_path: Path) -> None:
    app, _ = make_console(tmp_path, f'glbp_control = "{socket_path}"\n')

    async def go() -> tuple[dict[str, Any], str]:
        async with client(app) as http:
            await log_in(http, "vera")
            state = (await http.get("/api/glbp")).json()
            page = await http.get("/glbp")
            assert page.status_code == 200
            return state, page.text

    state, page = run_async(go())
    (source,) = state["sources"]
    assert source["error"].startswith(f"no GLBP daemon answers on {socket_path}: ")
    assert "\n" not in source["error"] and source["routers"] == []
    assert "Traceback" not in page and f"no GLBP daemon answers on {socket_path}" in page


def test_something_else_on_the_socket_is_one_line(tmp_path: Path, socket_path: Path) -> None:
    async def babble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"220 hello, I am not a router\n")
        await writer.drain()
        writer.close()

    app, _ = make_console(tmp_path, f'glbp_control = "{socket_path}"\n')

    async def go() -> dict[str, Any]:
        server = await asyncio.start_unix_server(babble, path=str(socket_path))
        try:
            async with client(app) as http:
                await log_in(http, "vera")
                return (await http.get("/api/glbp")).json()
        finally:
            server.close()
            await server.wait_closed()

    (source,) = run_async(go())["sources"]
    assert source["error"] == f"{socket_path} does not speak the GLBP control protocol"
