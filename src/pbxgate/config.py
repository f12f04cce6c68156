"""One settings model for every pbxgate area.

Where settings come from, later lines winning:

1. defaults declared on each section's dataclass;
2. a TOML file: ``--config PATH``, else ``$PBXGATE_CONFIG``, else
   ``~/.config/pbxgate/config.toml``, else ``/etc/pbxgate/config.toml`` (none is fine);
3. environment variables ``PBXGATE_<SECTION>_<FIELD>``, e.g. ``PBXGATE_CDR_TIMEZONE`` or, for a
   named entry of a table, ``PBXGATE_CDR_SOURCES_FREEPBX_PASSWORD``.

Each area declares its section as a dataclass and registers it with :func:`section`; it reads
it with ``settings.get(CdrSettings)``. Secrets are :class:`Secret` fields: in TOML they may be
given inline (``password = "..."``), from a file (``password_file = "/etc/pbxgate/db.pass"``)
or from a named variable (``password_env = "CDR_DB_PASS"``). A secret is never printed:
``repr``, ``str`` and ``pbxgate config show`` mask it, and it never travels on a command line.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pbxgate.errors import ConfigError

ENV_PREFIX = "PBXGATE_"
MASK = "********"

T = TypeVar("T")

_SECTIONS: dict[str, type[Any]] = {}


class Secret:
    """A string that does not show itself: only :meth:`reveal` returns the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def section(name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: register a dataclass as the ``[name]`` table of the settings file."""

    def register(cls: type[T]) -> type[T]:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} must be a dataclass")
        cls.__pbxgate_section__ = name  # type: ignore[attr-defined]
        _SECTIONS[name] = cls
        return cls

    return register


def registered_sections() -> dict[str, type[Any]]:
    return dict(_SECTIONS)


def default_paths() -> list[Path]:
    home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [home / "pbxgate" / "config.toml", Path("/etc/pbxgate/config.toml")]


def data_dir() -> Path:
    """Where pbxgate keeps its own files (embedded CDR store, outbox): XDG data home."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pbxgate"


class Settings:
    """The merged file and environment, bound to section dataclasses on demand."""

    def __init__(
        self,
        raw: Mapping[str, Any] | None = None,
        *,
        path: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        self.raw: dict[str, Any] = dict(raw or {})
        self.environ = dict(os.environ if environ is None else environ)
        self._cache: dict[type[Any], Any] = {}

    @classmethod
    def load(
        cls, path: str | Path | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        env = dict(os.environ if environ is None else environ)
        chosen = _choose_path(path, env)
        raw: dict[str, Any] = {}
        if chosen is not None:
            raw = _read_toml(chosen)
        return cls(raw, path=chosen, environ=env)

    def get(self, cls: type[T]) -> T:
        if cls not in self._cache:
            name = getattr(cls, "__pbxgate_section__", None)
            if name is None:
                raise TypeError(f"{cls.__name__} is not a registered settings section")
            table = self.raw.get(name, {})
            if not isinstance(table, dict):
                raise ConfigError(f"[{name}] in {self.path} must be a table")
            merged = _overlay_env(cls, table, ENV_PREFIX + name.upper() + "_", self.environ)
            self._cache[cls] = _bind(cls, merged, name, self.environ)
        return typing.cast(T, self._cache[cls])

    def check_sections(self) -> None:
        """Refuse tables no area knows (a typo like ``[ntoify]`` would otherwise be ignored)."""
        unknown = sorted(name for name in self.raw if name not in _SECTIONS)
        if unknown:
            raise ConfigError(
                f"unknown section [{unknown[0]}] in {self.path}",
                hint=f"known: {', '.join(sorted(_SECTIONS))}",
            )

    def check_names(self) -> None:
        """Refuse unknown sections and unknown keys anywhere in the file, without resolving
        a secret: run by every command, so that a typo (``[cdrr]``, ``[ntoify.vk]``,
        ``recipents``) stops it with one line instead of being silently ignored."""
        self.check_sections()
        for name, cls in _SECTIONS.items():
            table = self.raw.get(name)
            if isinstance(table, dict):
                _check_keys(cls, table, name)

    def describe(self) -> dict[str, Any]:
        """Effective settings of every registered section, secrets masked."""
        return {name: masked(self.get(cls)) for name, cls in sorted(_SECTIONS.items())}


def _choose_path(path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        explicit = Path(path)
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} does not exist", hint="check --config")
        return explicit
    if env.get("PBXGATE_CONFIG"):
        explicit = Path(env["PBXGATE_CONFIG"])
        if not explicit.is_file():
            raise ConfigError(
                f"config file {explicit} does not exist", hint="check $PBXGATE_CONFIG"
            )
        return explicit
    return next((p for p in default_paths() if p.is_file()), None)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def _field_types(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _overlay_env(
    cls: type[Any], table: Mapping[str, Any], prefix: str, env: Mapping[str, str]
) -> dict[str, Any]:
    """Return ``table`` with ``PREFIX<FIELD>`` variables laid over it (recursively)."""
    merged = dict(table)
    for name, tp in _field_types(cls).items():
        inner = _unwrap_optional(tp)
        key = prefix + name.upper()
        sub = merged.get(name, {})
        table_of = typing.get_args(inner)[1] if typing.get_origin(inner) is dict else None
        if isinstance(inner, type) and dataclasses.is_dataclass(inner):
            if isinstance(sub, dict):  # else _convert says "must be a table" in one line
                merged[name] = _overlay_env(inner, sub, key + "_", env)
        elif isinstance(table_of, type) and dataclasses.is_dataclass(table_of):
            if isinstance(sub, dict):
                merged[name] = _overlay_env_tables(table_of, sub, key + "_", env)
        elif key in env:
            merged[name] = env[key]
    return merged


def _overlay_env_tables(
    cls: type[Any], tables: Mapping[str, Any], prefix: str, env: Mapping[str, str]
) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in tables.items()}
    fields = sorted(_field_types(cls), key=len, reverse=True)
    for var, value in env.items():
        if not var.startswith(prefix):
            continue
        rest = var[len(prefix) :]
        for fname in fields:
            suffix = "_" + fname.upper()
            if rest.endswith(suffix) and len(rest) > len(suffix):
                entry = rest[: -len(suffix)].lower()
                out.setdefault(entry, {})[fname] = value
                break
    # an entry that is not a table is left for _convert to refuse in one line
    return {
        k: _overlay_env(cls, v, prefix + k.upper() + "_", env) if isinstance(v, dict) else v
        for k, v in out.items()
    }


def _bind(cls: type[T], table: Mapping[str, Any], where: str, env: Mapping[str, str]) -> T:
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    extras = {k for k in table if k not in names}
    secret_aux = {
        k for k in extras if k.endswith(("_file", "_env")) and k.rsplit("_", 1)[0] in names
    }
    unknown = sorted(extras - secret_aux)
    if unknown:
        raise ConfigError(
            f"unknown setting {where}.{unknown[0]}",
            hint=f"known: {', '.join(sorted(names))}",
        )
    kwargs: dict[str, Any] = {}
    for name in names:
        tp = hints[name]
        label = f"{where}.{name}"
        if _unwrap_optional(tp) is Secret:
            secret = _secret_from(table, name, label, env)
            if secret is not None:
                kwargs[name] = secret
        elif name in table:
            kwargs[name] = _convert(tp, table[name], label, env)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid [{where}] settings: {exc}") from exc


def _check_keys(cls: type[Any], table: Mapping[str, Any], where: str) -> None:
    hints = _field_types(cls)
    names = set(hints)
    for key, value in table.items():
        if key not in names:
            base = key.rsplit("_", 1)[0]
            if key.endswith(("_file", "_env")) and base in names:
                continue
            raise ConfigError(
                f"unknown setting {where}.{key}", hint=f"known: {', '.join(sorted(names))}"
            )
        inner = _unwrap_optional(hints[key])
        if dataclasses.is_dataclass(inner) and isinstance(value, dict):
            _check_keys(inner, value, f"{where}.{key}")  # type: ignore[arg-type]
        elif typing.get_origin(inner) is dict and isinstance(value, dict):
            vtype = typing.get_args(inner)[1]
            if dataclasses.is_dataclass(vtype):
                for entry, sub in value.items():
                    if isinstance(sub, dict):
                        _check_keys(vtype, sub, f"{where}.{key}.{entry}")  # type: ignore[arg-type]


def _secret_from(
    table: Mapping[str, Any], name: str, label: str, env: Mapping[str, str]
) -> Secret | None:
    if name in table and table[name] not in (None, ""):
        return _secret(str(table[name]), label)
    if f"{name}_env" in table:
        var = str(table[f"{name}_env"])
        if var not in env:
            raise ConfigError(f"{label}_env names ${var}, which is not set")
        return _secret(env[var], f"${var}")
    if f"{name}_file" in table:
        path = Path(str(table[f"{name}_file"])).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {label}_file {path}: {exc.strerror}") from exc
        return _secret(text, f"{label}_file {path}")
    return None


def _secret(text: str, where: str) -> Secret:
    """A secret without the line ends around it (an EnvironmentFile written on Windows leaves
    a carriage return); one with a control character inside is refused in one line that does
    not show it: it could not go in an HTTP header, and the error that quoted the header
    would."""
    value = text.strip("\r\n")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(f"{where} holds a control character (a line end, a tab?)")
    return Secret(value)


def _convert(tp: Any, value: Any, label: str, env: Mapping[str, str]) -> Any:
    inner = _unwrap_optional(tp)
    origin = typing.get_origin(inner)
    if value is None:
        return None
    if dataclasses.is_dataclass(inner) and isinstance(inner, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{label} must be a table")
        return _bind(inner, value, label, env)
    if origin is dict:
        _, vtype = typing.get_args(inner)
        if not isinstance(value, dict):
            raise ConfigError(f"{label} must be a table")
        return {str(k): _convert(vtype, v, f"{label}.{k}", env) for k, v in value.items()}
    if origin in (list, tuple):
        (etype, *_) = typing.get_args(inner) or (str,)
        items = value if isinstance(value, list) else [s for s in str(value).split(",") if s]
        converted = [_convert(etype, item, label, env) for item in items]
        return tuple(converted) if origin is tuple else converted
    if inner is bool:
        return _to_bool(value, label)
    if inner in (int, float):
        try:
            return inner(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{label} must be a number, not {value!r}") from None
    if inner is Path:
        return Path(str(value)).expanduser()
    return str(value) if inner is str else value


def _to_bool(value: Any, label: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{label} must be true or false, not {value!r}")


_URL_PASSWORD = re.compile(r"^(?P<head>[\w+.-]+://[^:/@\s]*:)(?P<password>[^@\s]*)@")


def masked(obj: Any) -> Any:
    """A plain structure of ``obj`` (dataclasses, dicts, lists) with secrets masked, the
    password of a ``scheme://user:password@host`` URL included."""
    if isinstance(obj, Secret):
        return MASK
    if isinstance(obj, str):
        if obj.lower().startswith(("http://", "https://")):  # a webhook's ?key=... or user:pass@
            from pbxgate.notify.recipients import redact  # noqa: PLC0415 - config stays lean

            return redact(obj)
        return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: masked(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: masked(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [masked(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def to_toml(data: Mapping[str, Any]) -> str:
    """Render nested plain data as TOML (tables after scalars), for ``config show``."""
    lines: list[str] = []
    _emit_table(lines, [], data)
    return "\n".join(lines).strip() + "\n"


def _emit_table(lines: list[str], path: list[str], data: Mapping[str, Any]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if path and (scalars or not tables):
        lines.append("")
        lines.append("[" + ".".join(_toml_key(p) for p in path) + "]")
    for key, value in scalars.items():
        if value is None:
            lines.append(f"# {_toml_key(key)} is not set: its default applies")
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in tables.items():
        _emit_table(lines, [*path, key], value)


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


__all__ = [
    "MASK",
    "Secret",
    "Settings",
    "data_dir",
    "default_paths",
    "masked",
    "registered_sections",
    "section",
    "to_toml",
]
