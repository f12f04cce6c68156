"""``pbxgate glbp``: the GLBP engine, IOS shell and simulator."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


# ---- pbxgate glbp run / show / console: the live daemon (pbxgate.glbp.daemon) -----------

CONTROL_OPTION = click.option(
    "--control",
    type=click.Path(dir_okay=False, path_type=Path),
    default="/run/pbxgate/glbp.sock",
    show_default=True,
    help="The daemon's console socket (owner-only).",
)


def ledger_option(text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--ledger",
        type=click.Path(dir_okay=False, path_type=Path),
        default="/run/pbxgate/glbp.ledger",
        show_default=True,
        help=text,
    )


@glbp.command("run")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@CONTROL_OPTION
@ledger_option("Where the daemon records what it changes on the host, to undo it after a crash.")
@click.option(SKIP_OPTION, is_flag=True, help="Skip configuration lines pbxgate does not model.")
@click.option("--debug-log", is_flag=True, help="Also log virtual MAC and socket details.")
def run_cmd(config: Path, control: Path, ledger: Path, skip_unknown: bool, debug_log: bool) -> None:
    """Run GLBP on this Linux host's interfaces, configured in IOS syntax (as root).

    CONFIG names Linux interfaces as 'ip link' shows them ('interface eth0'); the
    addresses are the host's own. The router becomes a GLBP member: it elects the AVG,
    answers ARP for the virtual IP when it is the AVG, and forwards for the virtual MACs it
    is Active for (macvlan interfaces named glbp<ifindex>v<group>f<n>). Log lines carry
    the IOS names (%GLBP-6-STATECHANGE, %GLBP-6-FWDSTATECHANGE, %GLBP-4-BADAUTH).
    SIGHUP reads CONFIG again; SIGTERM stops and removes everything the daemon made.

    \b
    Example:
      pbxgate glbp run /etc/pbxgate/glbp.cfg
      pbxgate glbp show brief
    """
    from pbxgate.glbp.daemon import run_daemon  # noqa: PLC0415

    run_daemon(
        config,
        lambda path: _read_config(path, skip_unknown),
        control=control,
        ledger_path=ledger,
        debug=debug_log,
    )


@glbp.command("cleanup")
@ledger_option("The ledger of the daemon to clean up after.")
def cleanup_cmd(ledger: Path) -> None:
    """Undo what a GLBP daemon that was killed left on the host: its virtual-MAC
    interfaces and the sysctls it changed (systemd runs this as ExecStopPost).

    \b
    Example:
      pbxgate glbp cleanup --ledger /run/pbxgate/glbp.ledger
    """
    from pbxgate.glbp.daemon.main import cleanup  # noqa: PLC0415

    undone = cleanup(ledger)
    click.echo(f"undone: {undone}" if undone else "nothing to undo", err=True)


@glbp.command("show")
@click.argument("words", nargs=-1)
@CONTROL_OPTION
def show_cmd(words: tuple[str, ...], control: Path) -> None:
    """Show the running daemon's state as IOS does ('show glbp WORDS').

    \b
    Examples:
      pbxgate glbp show              # show glbp
      pbxgate glbp show brief        # show glbp brief
      pbxgate glbp show eth0 1       # one group
      pbxgate glbp show track        # show track
      pbxgate glbp show running-config
    """
    from pbxgate.glbp.daemon import Client  # noqa: PLC0415

    first = words[0] if words else ""
    if first in ("track", "running-config", "startup-config"):
        line = " ".join(("show", *words))
    else:
        line = " ".join(("show", "glbp", *words))
    with Client(control) as client:
        output, _ = client.execute(line)
    click.echo(output.rstrip("\n"))


@glbp.command("console")
@CONTROL_OPTION
def console_cmd(control: Path) -> None:
    """An IOS console on the running daemon: configuration changes reach its engines at
    once, 'write memory' saves them to its configuration file.

    \b
    Example:
      pbxgate glbp console
      printf 'conf t\\ninterface eth0\\nglbp 1 priority 150\\nend\\nwrite memory\\n' \\
        | pbxgate glbp console
    """
    from pbxgate.glbp.daemon import Client  # noqa: PLC0415

    echo = not sys.stdin.isatty()
    with Client(control) as client:
        _, prompt = client.execute("")
        while True:
            if not echo:
                try:
                    line = input(prompt)
                except EOFError:
                    break
            else:
                raw = sys.stdin.readline()
                if not raw:
                    break
                line = raw.rstrip("\n")
                click.echo(f"{prompt}{line}")
            in_exec = prompt.endswith(">") or (prompt.endswith("#") and "(" not in prompt)
            if line.strip() in ("exit", "quit", "logout") and in_exec:
                break  # as on a router's console: exit from exec ends the session
            output, prompt = client.execute(line)
            if output:
                click.echo(output, nl=not output.endswith("\n"))


# ---- end of pbxgate glbp run ------------------------------------------------------------
