"""Configuration dataclasses ⇄ YAML, with ``key=value`` overrides from the command line.

Unknown keys are errors (a typo must not silently drop a loss term), values are converted to
the field's declared type, and the resolved config is saved beside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sagc.core.errors import SagcError
from sagc.core.extras import require

__all__ = ["load_config", "apply_overrides", "config_to_dict", "save_config"]

T = TypeVar("T")


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise SagcError(f"{where}: expected a mapping, got {value!r}")
        return _build(annotation, value, where)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if origin is typing.Literal:
        if value not in args:
            raise SagcError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v.strip() for v in value.strip("()[]").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise SagcError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise SagcError(f"{where}: expected {len(args)} values, got {list(value)}")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
        item = args[0] if args else Any
        return origin(_coerce(v, item, where) for v in value)
    if annotation is bool:
        if isinstance(value, str):
            if value.lower() in ("true", "yes", "1", "on"):
                return True
            if value.lower() in ("false", "no", "0", "off"):
                return False
            raise SagcError(f"{where}: expected true/false, got {value!r}")
        return bool(value)
    if annotation in (int, float, str):
        try:
            if annotation is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return annotation(value)
        except (TypeError, ValueError) as exc:
            raise SagcError(f"{where}: expected {annotation.__name__}, got {value!r}") from exc
    return value


def _build(cls: type[T], values: Mapping[str, Any], where: str = "config") -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - fields
    if unknown:
        raise SagcError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(fields))}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a dataclass that checks its own values (RuntimeSettings)
        raise SagcError(f"{where}: {exc}") from exc


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain-Python form of a config dataclass (tuples become lists, for YAML and checkpoints)."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def apply_overrides(config: T, overrides: Iterable[str]) -> T:
    """Return ``config`` with ``key=value`` (dotted keys for nested sections) applied."""
    values = config_to_dict(config)
    for item in overrides:
        if "=" not in item:
            raise SagcError(f"override {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        node = values
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise SagcError(f"override {key!r}: {part!r} is not a section")
            node = node[part]
        if parts[-1] not in node:
            raise SagcError(f"override {key!r}: unknown key; known: {', '.join(sorted(node))}")
        node[parts[-1]] = _parse_scalar(raw)
    return _build(type(config), values)


def _parse_scalar(raw: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def load_config(cls: type[T], path: str | os.PathLike[str] | None, overrides: Iterable[str] = ()) -> T:
    """Defaults of ``cls``, updated from a YAML file (if given), then from overrides."""
    require("yaml", purpose="reading a training config")
    import yaml

    values: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise SagcError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as exc:
            raise SagcError(f"{path} is not a text file; give a YAML config (see configs/)") from exc
        except yaml.YAMLError as exc:
            raise SagcError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from exc
        if not isinstance(loaded, dict):
            raise SagcError(f"{path} must hold a mapping of settings")
        values = loaded
    return apply_overrides(_build(cls, values, where=str(path or "config")), overrides)


def save_config(config: Any, path: str | os.PathLike[str]) -> Path:
    """Write the resolved config as YAML."""
    import yaml

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8")
    return target
