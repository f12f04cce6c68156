import io
import json
import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pbxgate.cli.main import cli, main
from pbxgate.cli.notify import notify
from pbxgate.errors import InputError
from pbxgate.notify.events import KINDS
from pbxgate.notify.fakevk import FakeVkServer, FakeVkState
from pbxgate.notify.vktoken import authorize_url, token_from_redirect

TOKEN = "vk1.a.pasted-token-0123456789"


def test_authorize_url_uses_the_new_host_and_version() -> None:
    url = authorize_url(1234567)
    assert url.startswith("https://oauth.vk.ru/authorize?client_id=1234567&")
    assert "redirect_uri=https://oauth.vk.ru/blank.html" in url
    assert "scope=messages,offline" in url and "v=5.199" in url
    assert "response_type=token" in url
    assert "group_ids=42" in authorize_url(1, group_id=42)


def test_token_from_redirect() -> None:
    url = f"https://oauth.vk.ru/blank.html#access_token={TOKEN}&expires_in=0&user_id=1"
    assert token_from_redirect(url) == TOKEN
    assert token_from_redirect("https://oauth.vk.ru/blank.html#access_token_42=abc") == "abc"
    with pytest.raises(InputError, match="no access_token"):
        token_from_redirect("https://oauth.vk.ru/blank.html#expires_in=0")
    with pytest.raises(InputError, match="access_denied"):
        token_from_redirect("https://oauth.vk.ru/blank.html#error=access_denied")


def test_vk_token_saves_a_private_file_and_never_prints_it(tmp_path: Path) -> None:
    out = tmp_path / "vk.token"
    redirect = f"https://oauth.vk.ru/blank.html#access_token={TOKEN}&expires_in=0"
    result = CliRunner().invoke(
        cli, ["notify", "vk-token", "--app-id", "7", "--save", str(out)], input=redirect + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "https://oauth.vk.ru/authorize?client_id=7" in result.output
    assert "community token is the recommended choice" in result.output
    assert TOKEN not in result.output
    assert out.read_text().strip() == TOKEN
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert f'token_file = "{out}"' in result.output


def test_vk_token_community_key(tmp_path: Path) -> None:
    out = tmp_path / "vk.token"
    result = CliRunner().invoke(
        cli, ["notify", "vk-token", "--community", "--save", str(out)], input="communitykey\n"
    )
    assert result.exit_code == 0
    assert out.read_text().strip() == "communitykey"
    assert 'token_type = "community"' in result.output


def test_vk_token_needs_a_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notify", "vk-token"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: give --community or --app-id") and err.count("\n") == 1


@pytest.fixture
def fake_vk():  # type: ignore[no-untyped-def]
    server = FakeVkServer(0, FakeVkState(fail={42: 901})).start()
    yield server
    server.stop()


def config_for(tmp_path: Path, base_url: str) -> Path:
    (tmp_path / "vk.token").write_text("cli-test-community-token\n")
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[cdr]
timezone = "Europe/Moscow"
[notify]
outbox = "{tmp_path / "o.sqlite3"}"
[notify.vk]
enabled = true
token_file = "{tmp_path / "vk.token"}"
recipients = ["1001", "42"]
api_base = "{base_url}"
"""
    )
    return cfg


def test_test_vk_shows_vk_answers_plainly(
    tmp_path: Path, fake_vk: FakeVkServer, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config_for(tmp_path, fake_vk.base_url)
    assert main(["--config", str(cfg), "notify", "test", "vk", "--to", "1001"]) == 0
    assert capsys.readouterr().out == "vk -> 1001: sent: VK message id 1\n"
    assert main(["--config", str(cfg), "notify", "test", "vk"]) == 5
    captured = capsys.readouterr()
    assert "vk -> 42: refused: VK error 901: the user has not allowed messages" in captured.out
    assert captured.err == "error: 1 of 2 test messages were not delivered\n"
    assert fake_vk.state.shown[0].message.startswith("Сейчас поступит звонок с номера:")


def test_walkthrough_send_status_worker_retry_purge(
    tmp_path: Path, fake_vk: FakeVkServer, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(config_for(tmp_path, fake_vk.base_url))
    assert main(["--config", cfg, "notify", "send-test-event", "--name", "Иван"]) == 0
    assert capsys.readouterr().out.startswith("queued incoming:")
    assert main(["--config", cfg, "notify", "send-test-event", "--caller", "201"]) == 0
    assert "internal" in capsys.readouterr().out
    assert main(["--config", cfg, "notify", "worker", "--until-idle"]) == 0
    assert capsys.readouterr().out == "outbox: 1 sent in all, 0 waiting to retry, 1 dead letters\n"
    assert main(["--config", cfg, "notify", "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (vk,) = data["channels"]
    assert (vk["sent"], vk["dead"]) == (1, 1)
    assert "VK error 901" in vk["last_error"]
    assert data["dead_letters"][0]["recipient"] == "42"
    assert main(["--config", cfg, "notify", "status"]) == 0
    text = capsys.readouterr().out
    assert "dead letters" in text and "42: VK error 901" in text
    fake_vk.state.fail.clear()  # the user allowed messages
    assert main(["--config", cfg, "notify", "retry", "--channel", "vk"]) == 0
    assert capsys.readouterr().out == "1 dead letter(s) queued again, 0 waiting retries due now\n"
    assert main(["--config", cfg, "notify", "worker", "--until-idle"]) == 0
    assert [s.peer_id for s in fake_vk.state.shown] == [1001, 42]
    assert "Имя: Иван" in fake_vk.state.shown[1].message
    assert main(["--config", cfg, "notify", "purge", "--sent-older-than", "0"]) == 0
    assert capsys.readouterr().out.endswith("2 deliveries deleted\n")


def test_purge_shows_its_progress_on_a_terminal_only(
    tmp_path: Path,
    fake_vk: FakeVkServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = str(config_for(tmp_path, fake_vk.base_url))
    for caller in ("+79161234567", "+79161234568"):
        assert main(["--config", cfg, "notify", "send-test-event", "--caller", caller]) == 0
    assert main(["--config", cfg, "notify", "worker", "--until-idle"]) == 0
    capsys.readouterr()

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["--config", cfg, "notify", "purge", "--sent-older-than", "0", "--dead"]) == 0
    assert capsys.readouterr().out == "4 deliveries deleted\n"
    assert "Purging" in terminal.getvalue() and "100%" in terminal.getvalue()


def test_fake_vk_rejects_bad_fail_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notify", "fake-vk", "--fail", "nope"]) == 2
    assert "PEER:CODE" in capsys.readouterr().err


def test_bad_route_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[notify.routes.night]\nchannels = ["vk"]\n')
    assert main(["--config", str(cfg), "notify", "worker", "--until-idle"]) == 2
    assert capsys.readouterr().err == (
        "error: notify.routes.night names channel 'vk', which is not enabled (enabled: none)\n"
    )


@pytest.mark.parametrize("name", sorted(notify.commands))
def test_every_command_has_help_with_an_example(name: str) -> None:
    result = CliRunner().invoke(cli, ["notify", name, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


def test_test_webhook_through_send_test(tmp_path: Path) -> None:
    import asyncio

    import httpx

    from pbxgate.config import Settings
    from pbxgate.notify.testsend import send_test

    settings = Settings({"notify": {"webhook": {"enabled": True, "recipients": ["http://h/x"]}}})
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(500) if req.url.path == "/down" else httpx.Response(200)

    transport = httpx.MockTransport(handler)
    result = asyncio.run(send_test(settings, "webhook", [], transport=transport))
    assert result == [("http://h/x", "sent", "HTTP 200 from h")]
    result = asyncio.run(send_test(settings, "webhook", ["http://h/down"], transport=transport))
    assert result == [("http://h/down", "retry later", "HTTP 500 from h")]
    assert json.loads(seen[0].content)["text"].startswith("Сейчас поступит звонок с номера:")


def test_vk_token_from_the_environment(tmp_path: Path, fake_vk: FakeVkServer) -> None:
    import asyncio

    from pbxgate.config import Settings
    from pbxgate.notify.testsend import send_test

    raw = {"notify": {"vk": {"enabled": True, "api_base": fake_vk.base_url}}}
    settings = Settings(raw, environ={"PBXGATE_NOTIFY_VK_TOKEN": "token-from-environment"})
    result = asyncio.run(send_test(settings, "vk", ["5"]))
    assert result[0][1] == "sent"
    no_token = Settings(raw, environ={})
    result = asyncio.run(send_test(no_token, "vk", ["5"]))
    assert result[0][1:] == (
        "refused",
        "no VK token configured ([notify.vk] token, token_file or token_env)",
    )


def test_until_idle_stops_when_only_future_retries_remain(
    tmp_path: Path, fake_vk: FakeVkServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A retry's backoff (up to an hour by default) used to keep --until-idle running; now it
    exits and says how many wait and when the next one is due."""
    cfg = str(config_for(tmp_path, fake_vk.base_url))
    fake_vk.state.fail[1001] = 10  # VK internal error: retried with backoff
    assert main(["--config", cfg, "notify", "send-test-event"]) == 0
    capsys.readouterr()
    started = time.monotonic()
    assert main(["--config", cfg, "notify", "worker", "--until-idle"]) == 0
    assert time.monotonic() - started < 30
    out = capsys.readouterr().out
    # 1001 waits to retry; 42 refuses messages from the community (a dead letter)
    assert out.startswith("outbox: 0 sent in all, 1 waiting to retry, 1 dead letters; ")
    assert "the next retry is due at" in out and "run again then" in out


def test_a_test_call_followed_to_its_end_is_one_edited_message(
    tmp_path: Path, fake_vk: FakeVkServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """With follow = "on": a made-up call's three states make one VK message, edited."""
    cfg = config_for(tmp_path, fake_vk.base_url)
    cfg.write_text(cfg.read_text().replace("[notify]\n", '[notify]\nfollow = "on"\n'))
    fake_vk.state.fail.clear()
    argv = ["--config", str(cfg), "notify"]
    assert main([*argv, "send-test-event"]) == 0
    call = capsys.readouterr().out.split("(call ")[1].rstrip(")\n")
    assert main([*argv, "worker", "--until-idle"]) == 0
    for kind in ("answered", "ended"):
        assert main([*argv, "send-test-event", "--kind", kind, "--call", call]) == 0
    assert main([*argv, "worker", "--until-idle"]) == 0  # waits out the edit delay
    shown = {s.peer_id: s for s in fake_vk.state.shown}
    assert sorted(shown) == [42, 1001]
    assert all(s.message.startswith("+79161234567 — разговор 2:31 с 102") for s in shown.values())
    assert [s.edits for s in shown.values()] == [1, 1]  # answered and ended: one edit


def test_a_test_call_followed_keeps_its_caller_name_and_did(
    tmp_path: Path, fake_vk: FakeVkServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--kind answered/ended --call ID`` without ``--caller`` continues that call: its caller,
    name and DID (and who answered it), not the options' defaults. The message that said
    "+79160000001" was edited to "+79161234567 ... 102" before."""
    from pbxgate.notify.outbox import Outbox

    cfg = config_for(tmp_path, fake_vk.base_url)
    cfg.write_text(cfg.read_text().replace("[notify]\n", '[notify]\nfollow = "on"\n'))
    fake_vk.state.fail.clear()
    argv = ["--config", str(cfg), "notify", "send-test-event"]
    first = ["--caller", "+79160000001", "--name", "Пётр", "--did", "74950000000"]
    assert main([*argv, *first]) == 0
    call = capsys.readouterr().out.split("(call ")[1].rstrip(")\n")
    assert main([*argv, "--kind", "answered", "--call", call, "--answered-by", "105"]) == 0
    assert main([*argv, "--kind", "ended", "--call", call]) == 0
    box = Outbox.open(tmp_path / "o.sqlite3")
    try:
        events = [e for e in box.events_since(KINDS, 0) if e.call_id == call]
    finally:
        box.close()
    assert [e.kind for e in events] == ["incoming", "answered", "ended"]
    assert {(e.caller_number, e.caller_name, e.did) for e in events} == {
        ("+79160000001", "Пётр", "74950000000")
    }
    assert [e.answered_by for e in events] == ["", "105", "105"]
    capsys.readouterr()
    assert main([*argv, "--kind", "ended", "--call", call]) == 0  # not "internal": sent already
    assert capsys.readouterr().out == f"not queued: call {call} has its ended event already\n"
    assert main(["--config", str(cfg), "notify", "worker", "--until-idle"]) == 0
    shown = [s.message for s in fake_vk.state.shown]
    assert len(shown) == 2
    assert all(m.startswith("+79160000001 — разговор 2:31 с 105") for m in shown), shown


def test_a_test_call_followed_takes_an_explicit_caller(
    tmp_path: Path, fake_vk: FakeVkServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """An option given on the command line wins over the call's earlier event (a real call's
    later event may carry another number); an unknown call id starts a call of that id."""
    from pbxgate.notify.outbox import Outbox

    cfg = str(config_for(tmp_path, fake_vk.base_url))
    argv = ["--config", cfg, "notify", "send-test-event"]
    assert main([*argv, "--caller", "+79160000001"]) == 0
    call = capsys.readouterr().out.split("(call ")[1].rstrip(")\n")
    assert main([*argv, "--kind", "answered", "--call", call, "--caller", "89160000001"]) == 0
    assert main([*argv, "--kind", "answered", "--call", "1733400000.1"]) == 0
    assert capsys.readouterr().out.endswith("queued answered:1733400000.1 (call 1733400000.1)\n")
    box = Outbox.open(tmp_path / "o.sqlite3")
    try:
        events = box.events_since(KINDS, 0)
        assert box.call_events(call) == [e for e in events if e.call_id == call]
        followed = [e for e in events if e.call_id == call]
        unknown = [e for e in events if e.call_id == "1733400000.1"]
    finally:
        box.close()
    assert [e.caller_number for e in followed] == ["+79160000001", "89160000001"]
    assert [(e.caller_number, e.did) for e in unknown] == [("+79161234567", "74951234567")]
