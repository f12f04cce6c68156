"""The delivery worker's process (pbxgate.notify.apart): what crosses its pipes."""

from __future__ import annotations

import subprocess
import sys

from pbxgate.errors import ConfigError, DeliveryError
from pbxgate.notify.apart import _dumps_error, _loads_error


def test_a_worker_without_settings_says_so_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pbxgate.notify.apart"],
        input=b"\x00\x00",  # the service died before it wrote the settings' length
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "error: the delivery worker got no settings: the service closed the worker's input "
        "before its settings"
    ]
    assert done.stdout == b""


def test_the_reason_a_worker_cannot_start_keeps_its_kind_and_hint() -> None:
    sent = ConfigError("[notify.vk] token is missing", hint="set PBXGATE_NOTIFY_VK_TOKEN")
    line = _dumps_error(sent)
    assert b"\n" not in line
    got = _loads_error(line)
    assert type(got) is ConfigError
    assert str(got) == "[notify.vk] token is missing (set PBXGATE_NOTIFY_VK_TOKEN)"
    assert got.exit_code == 2


def test_a_reason_that_does_not_travel_is_sent_as_its_message() -> None:
    class Local(Exception):  # a class of a function: it does not pickle
        pass

    got = _loads_error(_dumps_error(Local("the outbox folder is read-only")))
    assert type(got) is DeliveryError
    assert str(got) == "the outbox folder is read-only"
    assert isinstance(_loads_error(b"not base64 at all"), DeliveryError)
