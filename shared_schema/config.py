"""Build a daemon's typed settings from defaults, a TOML file, the environment and the command line.

Later sources win: dataclass defaults < TOML file < environment (``PREFIX_KEY``) < explicit
overrides (the command line).  Values from the environment are converted to the field's type.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting is unknown or has a value of the wrong type."""


def split_listen(listen: str, default_host: str) -> tuple[str, int]:
    """``HOST:PORT`` (HOST may be empty) -> (host, port); ConfigError when it is not."""
    host, _, port = listen.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"listen must be HOST:PORT, got {listen!r}")
    return host or default_host, int(port)


def _convert(name: str, raw: str, kind: Any) -> Any:
    if kind in (bool, "bool"):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected a boolean, got {raw!r}")
    try:
        if kind in (int, "int"):
            return int(raw)
        if kind in (float, "float"):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from exc
    return raw


def load_settings(
    cls: type[T],
    *,
    config_file: Path | None = None,
    env_prefix: str,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Return ``cls(**merged)``, where ``cls`` is a dataclass with a default for every field."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            with config_file.open("rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from exc
        for key, value in data.items():
            name = key.replace("-", "_")
            if name not in fields:
                raise ConfigError(f"config file {config_file}: unknown setting {key!r}")
            expected = fields[name].type
            if expected in (float, "float") and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            kinds = {"str": str, "int": int, "float": float, "bool": bool}
            kind = kinds.get(expected, expected) if isinstance(expected, str) else expected
            if isinstance(kind, type) and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
                raise ConfigError(f"config file {config_file}: {key} must be {kind.__name__}, got {value!r}")
            values[name] = value
    env = os.environ if environ is None else environ
    for name, field in fields.items():
        raw = env.get(f"{env_prefix}{name.upper()}")
        if raw is not None:
            values[name] = _convert(f"{env_prefix}{name.upper()}", raw, field.type)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    return cls(**values)
