"""The ``[ami]`` settings section: how pbxgate reaches Asterisk's manager interface.

Example (``/etc/asterisk/manager.conf`` needs a user with ``read = call`` and, to catch up
after a reconnection with ``CoreShowChannels``, ``write = reporting``)::

    [ami]
    enabled = true                # pbxgate serve: notifications from AMI, no dialplan change
    host = "127.0.0.1"
    port = 5038
    username = "pbxgate"
    # secret: here, or PBXGATE_AMI_SECRET in the environment; never on a command line

    [ami.managers.branch]         # another PBX, followed by the same pbxgate serve
    host = "10.0.2.1"
    username = "pbxgate"
    secret_file = "/etc/pbxgate/branch-ami.secret"
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pbxgate.config import Secret, data_dir, section
from pbxgate.errors import ConfigError

if TYPE_CHECKING:
    from pbxgate.ami.client import AmiClient


@dataclass
class ManagerSettings:
    """One PBX's manager: where it is, who pbxgate logs in as, the PBX's name."""

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

    def credentials(self, where: str = "[ami]") -> tuple[str, str]:
        """The user and the secret; a one-line error naming the table ``where`` when either
        is missing."""
        if not self.username or not self.secret:
            raise ConfigError(
                f"no AMI user configured in {where}",
                hint=f"set {where} username and secret (or secret_file; PBXGATE_AMI_SECRET "
                "for [ami]); manager.conf needs that user with read = call and "
                "write = reporting",
            )
        return self.username, self.secret.reveal()

    def client(self) -> AmiClient:
        """A new (unconnected) client for this manager."""
        from pbxgate.ami.client import AmiClient  # noqa: PLC0415 - settings load for every command

        username, secret = self.credentials()
        return AmiClient(self.host, self.port, username, secret, timeout=self.timeout)


@section("ami")
@dataclass
class AmiSettings(ManagerSettings):
    # pbxgate serve follows the manager and queues each inbound call's incoming and missed
    # events itself (no dialplan change; with the AGI too, the outbox keeps one of each)
    enabled: bool = False
    # More PBXes, one manager each, followed by the same pbxgate serve; a table's pbx name is
    # its own name unless it gives one: [ami.managers.branch] host = "10.0.2.1" ...
    managers: dict[str, ManagerSettings] = field(default_factory=dict)

    def followed(self, *, check: bool = True) -> list[ManagerSettings]:
        """The managers ``pbxgate serve`` follows: ``[ami]``'s own when it names a user (or
        when there is no other), then each of ``[ami.managers]``; no two may share a PBX name
        (their calls' ids would meet). ``check``: each one's user and secret too."""
        found = self._tables()
        for where, manager in found if check else ():
            manager.credentials(where)
        return [manager for _, manager in found]

    def manager(self, pbx: str | None, *, check: bool = True) -> ManagerSettings:
        """The manager of PBX ``pbx`` (None: ``[ami]``'s own, or the only one); ``check``:
        its user and secret too."""
        found = self._tables() if pbx is not None or self.managers else [("[ami]", self)]
        names = ", ".join(m.pbx or "(unnamed)" for _, m in found)
        if pbx is None and len(found) > 1:
            raise ConfigError(f"several AMI managers ({names})", hint="choose one with --pbx")
        chosen = [(w, m) for w, m in found if pbx is None or m.pbx == pbx]
        if not chosen:
            raise ConfigError(f"no AMI manager of PBX {pbx!r}", hint=f"configured: {names}")
        where, manager = chosen[0]
        if check:
            manager.credentials(where)
        return manager

    def _tables(self) -> list[tuple[str, ManagerSettings]]:
        found: list[tuple[str, ManagerSettings]] = []
        if self.username or not self.managers:
            found.append(("[ami]", self))
        for name, manager in sorted(self.managers.items()):
            found.append((f"[ami.managers.{name}]", replace(manager, pbx=manager.pbx or name)))
        names = [m.pbx for _, m in found]
        for name in names:
            if names.count(name) > 1:
                raise ConfigError(
                    f"two AMI managers are both PBX {name or '(unnamed)'!r}",
                    hint="give each [ami.managers.NAME] (and [ami], with several) its own pbx",
                )
        return found


__all__ = ["AmiSettings", "ManagerSettings"]
