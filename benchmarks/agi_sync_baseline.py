#!/usr/bin/env python3
"""The article's approach, for comparison only: an AGI script that calls VK synchronously.

It does what the PHP ``asteriskvk.php`` does (read the AGI environment, POST ``messages.send``
and wait for the answer) with only the standard library, so the call is held for as long as VK
takes. ``agi_hold.py`` runs it against a local fake VK; it is never used in production.

Usage (by agi_hold.py): agi_sync_baseline.py API_BASE TIMEOUT_SECONDS
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.parse
import urllib.request


def main() -> int:
    api_base, timeout = sys.argv[1], float(sys.argv[2])
    env = {}
    for raw in sys.stdin.buffer:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if not line:
            break
        key, _, value = line.partition(": ")
        env[key] = value
    form = urllib.parse.urlencode(
        {
            "peer_id": "1",
            "message": "Сейчас поступит звонок с номера: " + env.get("agi_callerid", ""),
            "random_id": "0",
            "v": "5.199",
        }
    ).encode()
    request = urllib.request.Request(
        f"{api_base}/method/messages.send",
        data=form,
        headers={"Authorization": "Bearer baseline-token"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
    except (urllib.error.URLError, TimeoutError, OSError):
        return 1  # like file_get_contents(): the message is simply lost
    return 0


if __name__ == "__main__":
    sys.exit(main())
