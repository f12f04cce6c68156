"""``pbxgate glbp``: the GLBP engine, IOS shell and simulator."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pbxgate.errors import InputError

# The engine, IOS layer and simulator load when a command runs, not for --help.
if TYPE_CHECKING:
    from pbxgate.glbp.config import RouterConfig


@click.group()
def glbp() -> None:
    """Cisco GLBP: engine, IOS commands, simulator and packet codec.

    \b
    Examples:
      pbxgate glbp sim examples/glbp/article.toml --pcap article.pcap
      pbxgate glbp shell examples/glbp/article.toml --router R3
    """


# ---- pbxgate glbp shell: an IOS console (pbxgate.glbp.ios) on a simulated router ----------


SKIP_OPTION = "--skip-unknown"


@glbp.command("shell")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--router", help="The router to open a console on (TOPOLOGY.toml with several).")
@click.option(
    "--at",
    type=click.FloatRange(min=0),
    help="Run the simulation to this virtual time first, in seconds (default: until the "
    "groups settle, four hold times after the last boot, or the end of the timeline).",
)
@click.option("--privileged", is_flag=True, help="Start in privileged exec (R2#), not R2>.")
@click.option(
    SKIP_OPTION,
    is_flag=True,
    help="Skip configuration lines pbxgate does not model (routing, lines, banners), "
    "counting them on stderr, instead of stopping at the first one (CONFIG_FILE only; "
    "topologies always skip them).",
)
def shell(
    source: Path, router: str | None, at: float | None, privileged: bool, skip_unknown: bool
) -> None:
    """An IOS console on one simulated GLBP router.

    SOURCE is a simulator topology (TOPOLOGY.toml, with --router) or one router's IOS
    configuration (any other file: a lab of that router alone). The simulation runs on its
    virtual clock to --at; then 'show glbp [brief]' and 'show track' show the live engines,
    configuration commands reach them as the timeline's 'command' action does, and
    'sim wait SECONDS' advances the clock (the rest of the timeline plays and its report
    lines print); 'sim time' shows the clock.

    Commands are read from the terminal (with ? help and abbreviations, as on IOS), or from
    standard input when it is not a terminal: then every command is echoed after its prompt,
    so the output reads like a console transcript.

    \b
    Example:
      pbxgate glbp shell examples/glbp/article.toml --router R3 --privileged
      printf 'conf t\\nint e0/0\\nglbp 1 priority 150\\nglbp 1 preempt\\nend\\n'\\
    'sim wait 10\\nshow glbp brief\\n' \\
        | pbxgate glbp shell examples/glbp/article.toml --router R3 --privileged
      pbxgate glbp shell examples/glbp/R2.cfg
    """
    from pbxgate.glbp.ios import EXEC  # noqa: PLC0415
    from pbxgate.glbp.ios.shell import USER_EXEC, interact, run_session  # noqa: PLC0415
    from pbxgate.glbp.sim import SimConsole, load_topology, single_router  # noqa: PLC0415

    if source.suffix.lower() == ".toml":
        topology = load_topology(source)
        names = [r.name for r in topology.routers]
        if router is None and len(names) > 1:
            raise InputError(
                f"{source} has routers {', '.join(names)}", hint="choose one with --router"
            )
    else:
        topology = single_router(_read_config(source, skip_unknown), source=str(source))
    console = SimConsole(topology, router or topology.routers[0].name, at)
    click.echo(
        f"{console.router} at virtual time {console.now:g} s of {topology.source}; "
        "'sim wait SECONDS' advances the clock",
        err=True,
    )
    mode = EXEC if privileged else USER_EXEC

    def write(chunk: str) -> None:
        click.echo(chunk, nl=False)

    if sys.stdin.isatty():
        interact(console.state, input, write, mode=mode, execute=console.execute)
    else:
        run_session(console.state, sys.stdin, write, mode=mode, execute=console.execute)


def _read_config(path: Path, skip_unknown: bool) -> RouterConfig:
    from pbxgate.glbp.ios import IosConfigError, parse_config  # noqa: PLC0415

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    skipped: list[str] | None = [] if skip_unknown else None
    try:
        config = parse_config(text, source=str(path), skipped=skipped)
    except IosConfigError as exc:
        if not exc.skippable:
            raise
        raise InputError(exc.message, hint=f"pass {SKIP_OPTION} to skip such lines") from exc
    if skipped:
        click.echo(f"skipped {len(skipped)} unsupported lines, first {skipped[0]}", err=True)
    return config


# ---- end of pbxgate glbp shell ----------------------------------------------------------


# ---- pbxgate glbp sim: the simulator (pbxgate.glbp.sim) ----------------------------------


@glbp.command("sim")
@click.argument("topology", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--pcap",
    "pcap_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write every GLBP and ARP frame of the run, with its simulated time, to this pcap.",
)
@click.option("--seed", type=int, help="Override the topology's seed (a run replays exactly).")
@click.option("--duration", type=float, help="Override the simulated duration, in seconds.")
def sim(topology: Path, pcap_path: Path | None, seed: int | None, duration: float | None) -> None:
    """Simulate the GLBP routers and hosts of TOPOLOGY (a TOML file) on a virtual clock.

    Prints the event timeline with IOS log lines, the show output the timeline asks for,
    which forwarder each host uses and how traffic divides among forwarders.

    \b
    Example:
      pbxgate glbp sim examples/glbp/article.toml --pcap article.pcap
      wireshark article.pcap
    """
    from pbxgate.glbp.pcap import write_pcap  # noqa: PLC0415
    from pbxgate.glbp.sim import load_topology, run_simulation  # noqa: PLC0415

    plan = load_topology(topology)
    if seed is not None:
        plan = dataclasses.replace(plan, seed=seed)
    if duration is not None:
        plan = dataclasses.replace(plan, duration=duration)
    result = run_simulation(plan, capture=pcap_path is not None)
    click.echo(result.report, nl=False)
    if pcap_path is not None:
        try:
            count = write_pcap(pcap_path, result.frames)
        except OSError as exc:
            raise InputError(f"cannot write {pcap_path}: {exc.strerror or exc}") from exc
        click.echo(f"wrote {count} frames to {pcap_path}", err=True)


# ---- end of pbxgate glbp sim -------------------------------------------------------------
