"""``pbxgate-agi`` run as Asterisk runs it: a subprocess with the environment on stdin."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pbxgate.config import data_dir
from pbxgate.notify.outbox import Outbox

SCRIPT = Path(sys.executable).with_name("pbxgate-agi")
ROOT = Path(__file__).resolve().parents[2]


def local_env(*args: str, callerid: str = "84991111111", uniqueid: str = "1795696994.11") -> bytes:
    """A process-AGI environment as captured from Asterisk 22.10.1 (no agi_network lines)."""
    lines = [
        b"agi_request: /usr/local/bin/pbxgate-agi",
        b"agi_channel: PJSIP/trunk-00000005",
        b"agi_language: ru",
        b"agi_type: PJSIP",
        b"agi_uniqueid: " + uniqueid.encode(),
        b"agi_version: 22.10.1",
        b"agi_callerid: " + callerid.encode(),
        "agi_calleridname: Олег Иванов".encode(),
        b"agi_dnid: 4996491913",
        b"agi_rdnis: unknown",
        b"agi_context: from-trunk",
        b"agi_extension: 4996491913",
        b"agi_priority: 2",
        b"agi_enhanced: 0.0",
        b"agi_accountcode: ",
        b"agi_threadid: 140301540607680",
    ]
    lines += [f"agi_arg_{i}: {a}".encode() for i, a in enumerate(args, start=1)]
    return b"\n".join(lines) + b"\n\n"


def run_script(stdin: bytes, *argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(SCRIPT), *argv], input=stdin, capture_output=True, timeout=60, check=False
    )


def queued_events() -> list[str]:
    box = Outbox.open(data_dir() / "outbox.sqlite3")
    try:
        return [event.event_id for event in box.unplanned()]
    finally:
        box.close()


def test_notify_queues_the_event_and_writes_only_agi_commands():
    replies = b"200 result=1 (1795696994.10)\n200 result=1\n"
    done = run_script(local_env("notify") + replies, "notify")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        b'GET VARIABLE "CHANNEL(linkedid)"\nSET VARIABLE "PBXGATE_EVENT" "queued"\n'
    )
    assert done.stderr == b""
    box = Outbox.open(data_dir() / "outbox.sqlite3")
    try:
        (event,) = box.unplanned()
    finally:
        box.close()
    assert event.event_id == "incoming:1795696994.10"
    assert (event.caller_name, event.did) == ("Олег Иванов", "4996491913")


def test_the_fallback_after_a_fastagi_session_that_could_not_read_the_linkedid_adds_nothing():
    """A FastAGI session on a channel that is not the call's first, whose linkedid read
    Asterisk did not answer in time, stores the call under the channel's uniqueid and closes
    without a result; the dialplan's fallback then runs on the same channel, reads the
    linkedid, and must not queue the call a second time (two messages)."""
    import asyncio

    from pbxgate.agi.runner import run_service
    from pbxgate.config import Settings
    from tests.agi.fakes import environment, fake_asterisk

    channel_id, call_id = "1795696994.11", "1795696994.10"

    async def fastagi_without_an_answer() -> list[bytes]:
        stop = asyncio.Event()
        ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        service = asyncio.create_task(run_service(
            Settings({"agi": {"idle_timeout": 0.5}}), stop, listen=("127.0.0.1", 0),
            worker=None, on_ready=ready.set_result,
        ))  # fmt: skip
        _, port = await ready
        try:  # Asterisk does not answer the linkedid read
            return await fake_asterisk(port, environment("notify", uniqueid=channel_id),
                                       lambda line: b"")  # fmt: skip
        finally:
            stop.set()
            await service

    assert asyncio.run(fastagi_without_an_answer()) == [b'GET VARIABLE "CHANNEL(linkedid)"\n']
    assert queued_events() == [f"incoming:{channel_id}"]
    replies = f"200 result=1 ({call_id})\n200 result=1\n".encode()
    done = run_script(local_env("notify", uniqueid=channel_id) + replies, "notify")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(b'SET VARIABLE "PBXGATE_EVENT" "skipped"\n')
    assert queued_events() == [f"incoming:{channel_id}"]
    # a run on another channel is not that one's fallback: its event goes in under the call
    other = run_script(local_env("notify", uniqueid="1795696994.12") + replies, "notify")
    assert other.stdout.endswith(b'SET VARIABLE "PBXGATE_EVENT" "queued"\n')
    assert queued_events() == [f"incoming:{channel_id}", f"incoming:{call_id}"]


def test_a_missed_run_reads_its_variables_in_one_round_trip():
    """The script's stdin holds Asterisk's answers in order: one for the GET FULL VARIABLE of
    the three names it needs (the linkedid, DIALSTATUS, where FreePBX keeps the dialled number
    in an h extension), one for SET VARIABLE."""
    env = local_env("missed").replace(b"agi_extension: 4996491913", b"agi_extension: h")
    env = env.replace(b"agi_dnid: 4996491913", b"agi_dnid: unknown")
    replies = b"200 result=1 (1795696994.11|NOANSWER|74951110101|)\n200 result=1\n"
    done = run_script(env + replies, "missed")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        b'GET FULL VARIABLE "${CHANNEL(linkedid)}|${DIALSTATUS}|${FROM_DID}|${CDR(did)}"\n'
        b'SET VARIABLE "PBXGATE_EVENT" "queued"\n'
    )
    box = Outbox.open(data_dir() / "outbox.sqlite3")
    try:
        (event,) = box.unplanned()
    finally:
        box.close()
    assert (event.event_id, event.dialstatus, event.did) == (
        "missed:1795696994.11",
        "NOANSWER",
        "74951110101",
    )


def test_missed_with_arguments_needs_no_round_trip_and_runs_once_per_call():
    env = local_env("missed", "dialstatus=NOANSWER", "linkedid=1795696994.11", "queue=sales")
    for _ in range(2):
        done = run_script(env + b"200 result=1\n", "missed")
        assert done.returncode == 0, done.stderr
    assert done.stdout == b'SET VARIABLE "PBXGATE_EVENT" "skipped"\n'  # the second run
    assert queued_events() == ["missed:1795696994.11"]


def test_internal_caller_is_skipped():
    done = run_script(local_env("notify", callerid="101") + b"200 result=0\n200 result=1\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(b'SET VARIABLE "PBXGATE_EVENT" "skipped"\n')
    assert queued_events() == []


def test_survives_sighup_after_hangup():
    proc = subprocess.Popen(
        [str(SCRIPT), "notify"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write(local_env("notify"))
    proc.stdin.flush()
    # The first command proves the script is past its start-up (SIGHUP already ignored).
    assert proc.stdout.readline() == b'GET VARIABLE "CHANNEL(linkedid)"\n'
    os.kill(proc.pid, signal.SIGHUP)  # what res_agi.c does when the caller hangs up
    proc.stdin.write(b"200 result=1 (L-HUP)\n200 result=1\n")
    proc.stdin.close()
    assert proc.stdout.read() == b'SET VARIABLE "PBXGATE_EVENT" "queued"\n'
    assert proc.wait(timeout=60) == 0
    proc.stdout.close()
    assert proc.stderr and proc.stderr.read() == b""
    proc.stderr.close()
    assert queued_events() == ["incoming:L-HUP"]


@pytest.mark.parametrize(
    "layout",
    ["venv", "by-name", "linked-elsewhere", "no-venv", "no-venv-long-path", "no-venv-uv"],
)
def test_sighup_is_ignored_before_the_interpreter_starts(tmp_path, layout):
    """Asterisk's SIGHUP can come at any moment once the script is started, the interpreter's
    own start included (20-50 ms, more on a busy PBX; a real Asterisk's early hang-up in the
    tests met that window under load): the interpreter starts with it ignored already, as a
    sitecustomize, which runs before any module of the script, sees. The script finds its
    interpreter in a venv (also run as ``sh pbxgate-agi`` from there), through a link from
    elsewhere (/usr/local/bin), and installed without a venv, from the ``pbxgate`` command
    beside it (pip's two forms of it)."""
    (tmp_path / "sitecustomize.py").write_text(
        "import os, signal\n"
        "with open(os.environ['PBXGATE_TEST_SEEN'], 'w') as f:\n"
        "    f.write(repr(signal.getsignal(signal.SIGHUP)))\n",
        encoding="utf-8",
    )
    script = SCRIPT
    if layout not in ("venv", "by-name"):
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        script = bin_dir / "pbxgate-agi"
    if layout == "linked-elsewhere":
        script.symlink_to(SCRIPT)
    elif layout.startswith("no-venv"):  # no python beside it: the one pip wrote into pbxgate
        script.write_bytes(SCRIPT.read_bytes())
        script.chmod(0o755)
        python = sys.executable
        if layout == "no-venv-long-path":  # pip's form for a path too long for #!
            head = f"#!/bin/sh\n'''exec' \"{python}\" \"$0\" \"$@\"\n' '''\n"
        elif layout == "no-venv-uv":  # uv's form of it
            head = f"#!/bin/sh\n'''exec' '{python}' \"$0\" \"$@\"\n' '''\n"
        else:
            head = f"#!{python}\n"
        (bin_dir / "pbxgate").write_text(head + "import sys\n", encoding="utf-8")
    command = ["sh", script.name, "notify"] if layout == "by-name" else [str(script), "notify"]
    seen = tmp_path / "seen"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PBXGATE_TEST_SEEN": str(seen)}
    done = subprocess.run(
        command,
        cwd=script.parent,
        input=local_env("notify") + b"200 result=1 (L-EARLY)\n200 result=1\n",
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
        # as Asterisk starts it (ast_safe_fork: SIGHUP back to its default), whatever this
        # test's own runner ignores
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    assert seen.read_text(encoding="utf-8") == repr(signal.SIG_IGN)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(b'SET VARIABLE "PBXGATE_EVENT" "queued"\n')


def test_the_installed_script_is_the_one_in_the_repository():
    """An editable install copies bin/pbxgate-agi once: the tests run the copy."""
    assert SCRIPT.read_bytes() == (ROOT / "bin" / "pbxgate-agi").read_bytes()


@pytest.mark.parametrize("beside", ["", "#!/usr/bin/env python3\n"], ids=["nothing", "env"])
def test_a_script_with_no_python_to_run_says_so_in_one_line(tmp_path, beside):
    """No python beside it, and no ``pbxgate`` command naming one (or one that names no
    interpreter of its own)."""
    script = tmp_path / "pbxgate-agi"
    script.write_bytes(SCRIPT.read_bytes())
    script.chmod(0o755)
    if beside:
        (tmp_path / "pbxgate").write_text(beside + "import sys\n", encoding="utf-8")
    done = subprocess.run([str(script), "notify"], input=b"", capture_output=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        f"pbxgate-agi: no Python to run: neither {tmp_path}/python nor the one "
        f"{tmp_path}/pbxgate names"
    ]


def test_enqueue_failure_is_reported_and_exits_nonzero(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    config = tmp_path / "config.toml"
    config.write_text(f'[notify]\noutbox = "{blocker}/outbox.sqlite3"\n')
    monkeypatch.setenv("PBXGATE_CONFIG", str(config))
    done = run_script(local_env("notify") + b"200 result=1 (L-FAIL)\n200 result=1\n")
    assert done.returncode == 1
    assert done.stdout.endswith(b'SET VARIABLE "PBXGATE_EVENT" "failed"\n')
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith("pbxgate-agi: could not queue incoming:L-FAIL (")
    assert '"caller_number":"84991111111"' in line


def test_bad_config_still_reports_the_event(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text("[notify\n")
    monkeypatch.setenv("PBXGATE_CONFIG", str(config))
    done = run_script(local_env("notify") + b"200 result=1 (L-CFG)\n200 result=1\n")
    assert done.returncode == 1
    assert "could not queue incoming:L-CFG" in done.stderr.decode()
    assert "is not valid TOML" in done.stderr.decode()


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"agi_request: /usr/local/bin/pbxgate-agi\nagi_chan", "in the middle of a line"),
        (b"agi_request: x\n", "before the end of the AGI environment"),
        (b"hello\n\n", "malformed AGI environment line"),
    ],
)
def test_broken_input_gives_one_line_and_no_stdout(stdin, message):
    done = run_script(stdin)
    assert done.returncode == 2
    assert done.stdout == b""
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith("pbxgate-agi: ") and message in line


def test_unknown_route_is_one_line():
    done = run_script(local_env("ring"))
    assert done.returncode == 2 and done.stdout == b""
    assert "no AGI handler for 'ring'" in done.stderr.decode()


def test_help_has_an_example():
    done = run_script(b"", "--help")
    assert done.returncode == 0
    assert b"exten => _X.,1,AGI(/usr/local/bin/pbxgate-agi,notify)" in done.stdout


def test_silent_asterisk_is_given_up_after_the_idle_timeout(monkeypatch):
    monkeypatch.setenv("PBXGATE_AGI_IDLE_TIMEOUT", "1")
    proc = subprocess.Popen(
        [str(SCRIPT), "notify"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdin.write(b"agi_request: /usr/local/bin/pbxgate-agi\n")  # and then nothing
    proc.stdin.flush()
    assert proc.wait(timeout=60) == 2
    assert proc.stdout.read() == b""
    assert proc.stderr.read() == (
        b"pbxgate-agi: gave up after [agi] idle_timeout: Asterisk silent or the outbox stuck\n"
    )
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        pipe.close()


def test_a_commit_after_asterisk_fell_silent_has_a_limit_of_its_own(monkeypatch):
    """The alarm went off while a name was read (Asterisk silent): the read gives up, and the
    commit is limited again (commit_timeout), its failure reported with the whole event. The
    read used to swallow the alarm, and the commit then waited for the outbox's lock without
    any limit of the call's (10 s here)."""
    import fcntl

    monkeypatch.setenv("PBXGATE_AGI_IDLE_TIMEOUT", "1")
    monkeypatch.setenv("PBXGATE_AGI_COMMIT_TIMEOUT", "1")
    box = data_dir() / "outbox.sqlite3"
    box.parent.mkdir(parents=True, exist_ok=True)
    Outbox.open(box).close()
    lock = os.open(f"{box}.write.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # another writer holds the outbox
    proc = subprocess.Popen(
        [str(SCRIPT), "notify"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write(local_env())  # then no answer to the name's read
        proc.stdin.flush()
        assert proc.wait(timeout=6) == 1  # idle 1 s + commit 1 s, not the lock's 10 s
        err = proc.stderr.read().decode()
        assert "could not queue incoming:1795696994.11" in err and '"caller_number"' in err
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_closed_stdin_is_one_line():
    """`pbxgate-agi <&-`: not run by Asterisk; one line, not a traceback."""
    done = subprocess.run(
        ["sh", "-c", f'exec "{SCRIPT}" notify <&-'], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 2 and done.stdout == b""
    (line,) = done.stderr.decode().splitlines()
    assert line == "pbxgate-agi: cannot talk to Asterisk on stdin/stdout: Bad file descriptor"


def test_an_environment_without_ids_is_one_line():
    """Asterisk always sends agi_uniqueid; a block without one (and an empty process
    environment) gives one line and status 2."""
    done = subprocess.run(
        [str(SCRIPT), "notify"], input=b"\n", env={}, capture_output=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.decode().splitlines()
    assert lines == ["pbxgate-agi: a call event needs a linkedid or uniqueid"]
