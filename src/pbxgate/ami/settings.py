"""The ``[ami]`` settings section: how pbxgate reaches Asterisk's manager interface.

Example (``/etc/asterisk/manager.conf`` needs a user with ``read = call`` at least)::

    [ami]
    enabled = true                # pbxgate serve: notifications from AMI, no dialplan change
    host = "127.0.0.1"
    port = 5038
    username = "pbxgate"
    # secret: here, or PBXGATE_AMI_SECRET in the environment; never on a command line
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pbxgate.config import Secret, data_dir, section
from pbxgate.errors import ConfigError

if TYPE_CHECKING:
    from pbxgate.ami.client import AmiClient


@section("ami")
@dataclass
class AmiSettings:
    # pbxgate serve follows the manager and queues each inbound call's incoming and missed
    # events itself (no dialplan change; with the AGI too, the outbox keeps one of each)
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 5038  # manager.conf [general] port
    username: str = ""
    secret: Secret | None = None
    timeout: float = 10.0  # seconds for the connection, the login and each action
    # The name of this manager's PBX where pbxgate serves several (routes match it; the
    # dialplan's AGI gives the same name as agi://.../notify?pbx=NAME); empty = the only one
    pbx: str = ""
    # pbxgate serve streams the live calls here (pbxgate ami live); empty = <data dir>/live.sock
    # (live-<pbx>.sock with a pbx name)
    live_socket: Path | None = None

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is not a TCP port")

    def live_socket_path(self) -> Path:
        """The live-calls socket; by default one per PBX name, so that the serves of several
        managers on one host do not meet."""
        if self.live_socket is not None and str(self.live_socket) not in ("", "."):
            return self.live_socket
        return data_dir() / (f"live-{self.pbx}.sock" if self.pbx else "live.sock")

    def credentials(self) -> tuple[str, str]:
        """The user and the secret; a one-line error when either is missing."""
        if not self.username or not self.secret:
            raise ConfigError(
                "no AMI user configured",
                hint="set [ami] username and secret (or PBXGATE_AMI_SECRET); "
                "manager.conf needs that user with read = call",
            )
        return self.username, self.secret.reveal()

    def client(self) -> AmiClient:
        """A new (unconnected) client for this manager."""
        from pbxgate.ami.client import AmiClient  # noqa: PLC0415 - settings load for every command

        username, secret = self.credentials()
        return AmiClient(self.host, self.port, username, secret, timeout=self.timeout)


__all__ = ["AmiSettings"]
