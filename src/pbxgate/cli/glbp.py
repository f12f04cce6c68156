"""``pbxgate glbp``: the GLBP engine, IOS shell and simulator."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from pbxgate.errors import InputError
from pbxgate.glbp.ios import EXEC, IosState, parse_config
from pbxgate.glbp.ios.shell import USER_EXEC, interact, run_session
from pbxgate.glbp.pcap import write_pcap
from pbxgate.glbp.sim import load_topology, run_simulation


@click.group()
def glbp() -> None:
    """Cisco GLBP: engine, IOS commands, simulator and packet codec."""


# ---- pbxgate glbp shell: the IOS configuration layer (pbxgate.glbp.ios) --------------------


@glbp.command("shell")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--privileged", is_flag=True, help="Start in privileged exec (R2#), not R2>.")
@click.option(
    "--skip-unknown",
    is_flag=True,
    help="Skip configuration lines pbxgate does not model (routing, lines, banners), "
    "counting them on stderr, instead of stopping at the first one.",
)
def shell(config_file: Path, privileged: bool, skip_unknown: bool) -> None:
    """Configure one GLBP router with IOS commands, starting from CONFIG_FILE.

    Commands are read from the terminal (with ? help and abbreviations, as on IOS), or from
    standard input when it is not a terminal: then every command is echoed after its prompt,
    so the output reads like a console transcript. 'show running-config' prints the result.

    \b
    Example:
      pbxgate glbp shell R2.cfg
      printf 'enable\\nconf t\\nint e0/0\\nglbp 1 priority 120\\ndo show run\\n' \\
        | pbxgate glbp shell R2.cfg
    """
    try:
        text = config_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {config_file}: {exc}") from exc
    skipped: list[str] | None = [] if skip_unknown else None
    state = IosState(parse_config(text, source=str(config_file), skipped=skipped))
    if skipped:
        click.echo(f"skipped {len(skipped)} unsupported lines, first {skipped[0]}", err=True)
    mode = EXEC if privileged else USER_EXEC

    def write(chunk: str) -> None:
        click.echo(chunk, nl=False)

    if sys.stdin.isatty():
        interact(state, input, write, mode=mode)
    else:
        run_session(state, sys.stdin, write, mode=mode)


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
