"""How the enhancer runs: one frozen, validated description of the run-time settings.

:class:`RuntimeSettings` is the only place a setting is declared. Its fields carry what every
surface needs — the range a value must lie in, the help text, the command-line flag, the value
a preview toggle switches on — so the enhancer, checkpoints (``runtime``), the CLI flags, the
``sagc:`` method keys, the preview controls, the trainer's validation and the ONNX metadata are
all derived from it. A new setting is a field here plus its own logic where it acts.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sagc.core.checks import check_number
from sagc.ops.denoise import DEFAULT_STRENGTH
from sagc.ops.guide import DEFAULT_GUIDE

DEFAULT_TEMPORAL = 0.6  # what the preview's toggle switches on when the weights' own value is off

__all__ = ["SWITCH", "RuntimeSettings", "Setting", "adjustables", "controls", "settings_fields", "switch"]

SWITCH = ("on", "off")  # how on/off settings are written (--exposure-gate on, sagc:gate=off)


def switch(value: str | None) -> bool | None:
    """``"on"`` → True, ``"off"`` → False, None (not given) → None; anything else is a ValueError."""
    if value is None:
        return None
    if value not in SWITCH:
        raise ValueError(f"must be on or off, got {value!r}")
    return value == "on"


@dataclass(frozen=True, slots=True)
class Setting:
    """What the surfaces need to know about one field of :class:`RuntimeSettings`.

    ``kind`` is ``float`` or ``bool``; numbers lie in ``[low, high]`` (``low_open``/``high_open``
    make an end exclusive). ``flag`` is the command-line option, ``control`` the preview's name
    for its toggle (None: no toggle) and ``label`` its caption, ``key`` the preview window's key
    for it, and ``on`` the value the toggle switches on when the weights' own value is off.
    A numeric setting with a ``step`` is stepped up and down in the preview instead (``keys``:
    the window's down and up keys).
    """

    name: str
    kind: type
    help: str
    flag: str
    low: float = 0.0
    high: float = 1.0
    low_open: bool = False
    high_open: bool = False
    meaning: str = ""
    control: str | None = None
    label: str = ""
    key: str | None = None
    on: float | bool | None = None
    step: float | None = None
    keys: str | None = None

    def check(self, value: object) -> float | bool:
        """``value`` as this setting's type, or a ValueError naming the setting and its range."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{self.name} must be on or off (true/false), got {value!r}")
            return value
        return check_number(
            self.name,
            value,
            low=self.low,
            high=self.high,
            low_open=self.low_open,
            high_open=self.high_open,
            meaning=self.meaning,
        )

    def off(self, value: float | bool) -> bool:
        """True when ``value`` turns this setting's effect off."""
        return value is False or (self.kind is not bool and value == 0.0)

    def text(self, value: float | bool) -> str:
        """``on``/``off`` for switches, the number without trailing zeros otherwise."""
        if self.kind is bool:
            return "on" if value else "off"
        return f"{value:g}"


def _setting(default: float | bool, **spec: Any) -> Any:
    return field(default=default, metadata={"setting": spec})


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """The run-time settings of an :class:`~sagc.models.Enhancer`; every value is checked."""

    scale: float = _setting(
        1.0,
        kind=float,
        low=1.0,
        high=64.0,
        flag="--scale",
        meaning="γ is estimated at 1/scale resolution",
        help="estimate γ at 1/SCALE resolution; larger is faster",
    )
    gain: float = _setting(
        1.0,
        kind=float,
        low=0.0,
        high=64.0,
        low_open=True,
        flag="--gain",
        meaning="input gain",
        help="multiply the input by GAIN before estimating (the paper's test script uses 1.5)",
    )
    denoise: float = _setting(
        0.0,
        kind=float,
        high=100.0,
        flag="--denoise",
        meaning="strength relative to the measured noise; 0 is off",
        control="denoise",
        label="denoise",
        key="d",
        on=DEFAULT_STRENGTH,
        help="noise reduction before brightening: 5×5 bilateral filter with colour σ = DENOISE × the "
        "noise measured in each frame, at night a second pass and a colour blur; 0 turns it off",
    )
    gate: bool = _setting(
        False,
        kind=bool,
        flag="--exposure-gate",
        control="gate",
        label="exposure gate",
        key="g",
        on=True,
        help="exposure decision: leave frames a model of whole-frame brightness calls well exposed alone, "
        "enhance them less in between, and expose dark ones to a level metered by content (luma statistics "
        "over the white)",
    )
    guide: float = _setting(
        0.0,
        kind=float,
        flag="--guide",
        meaning="window radius / the low-res map's shorter side; 0 is off",
        control="guide",
        label="guided upsampling",
        key="u",
        on=DEFAULT_GUIDE,
        help="upsample γ along each pixel's brightness (a local tone curve fitted in windows of radius "
        "GUIDE × the low-resolution frame's shorter side) instead of bilinearly; 0 turns it off",
    )
    ev: float = _setting(
        0.0,
        kind=float,
        low=-3.0,
        high=3.0,
        flag="--ev",
        meaning="exposure compensation in stops; 0 is automatic",
        label="EV",
        step=0.5,
        keys="-+",
        help="exposure compensation in stops: brighter (> 0) or darker (< 0) than automatic, never darker "
        "than the input; a frame left as it is stays so at 0",
    )
    smooth: float = _setting(
        0.0,
        kind=float,
        high=1.0,
        high_open=True,
        flag="--smooth",
        meaning="weight of the past; 0 is off",
        control="smoothing",
        label="smoothing",
        key="s",
        on=0.8,
        help="video and preview: exponential moving average of the low-resolution γ map, SMOOTH = "
        "weight of the past (reset at scene cuts); 0 turns it off, except on night frames with the "
        "exposure gate on, which are smoothed at 0.8 or more",
    )
    black: float = _setting(
        0.0,
        kind=float,
        high=4.0,
        flag="--black",
        meaning="black point of a dark frame, in multiples of its 1st-percentile luma; 0 is off",
        help="black point: levels under BLACK × the 1st percentile of a dark frame's low-resolution luma "
        "are pressed towards black (a smooth toe) before brightening, so the lift raises detail rather than "
        "the noise floor (scaled by the exposure "
        "gate's weight and by how far the frame is into night: well-exposed and dusk frames "
        "keep their blacks); 0 turns it off",
    )

    temporal_denoise: float = _setting(
        0.0,
        kind=float,
        high=0.95,
        flag="--temporal-denoise",
        meaning="the weight a still pixel keeps of its history; 0 is off",
        control="temporal",
        label="temporal noise reduction",
        key="t",
        on=DEFAULT_TEMPORAL,
        help="video: motion-aware recursive noise reduction before brightening; a still pixel keeps "
        "TEMPORAL_DENOISE of its filtered history (its noise falls to sqrt((1 − T) / (1 + T))), a moving one "
        "none; 0 turns it off",
    )

    def __post_init__(self) -> None:
        for setting in settings_fields():
            object.__setattr__(self, setting.name, setting.check(getattr(self, setting.name)))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "settings") -> RuntimeSettings:
        """Settings from a plain mapping (a checkpoint's ``runtime``); missing keys take the
        defaults, unknown keys and bad values are a ValueError naming ``where``."""
        if not isinstance(values, Mapping):
            raise ValueError(f"{where} must be a mapping of settings, got {type(values).__name__}")
        known = {s.name for s in settings_fields()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        try:
            return cls(**values)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    def replace(self, **changes: Any) -> RuntimeSettings:
        """A copy with ``changes`` (None values are ignored: "keep this one"), checked again."""
        changes = {name: value for name, value in changes.items() if value is not None}
        return dataclasses.replace(self, **changes) if changes else self

    def as_dict(self) -> dict[str, float | bool]:
        """Plain values by name, for checkpoints, JSON and tables."""
        return {setting.name: getattr(self, setting.name) for setting in settings_fields()}

    def describe(self) -> dict[str, str]:
        """The settings as text: switches ``on``/``off``, numbers without trailing zeros."""
        return {s.name: s.text(getattr(self, s.name)) for s in settings_fields()}

    def line(self) -> str:
        """``scale 8, gain 1, denoise 7, gate on, guide 0.5, smooth 0``: the settings on one line."""
        return ", ".join(f"{name} {text}" for name, text in self.describe().items())

    def toggled(self, setting: Setting, on: bool, *, reference: RuntimeSettings) -> RuntimeSettings:
        """``setting`` switched off, or on at ``reference``'s value (the toggle's default when
        that is off too) — what a preview toggle does."""
        if not on:
            return self.replace(**{setting.name: False if setting.kind is bool else 0.0})
        wanted = getattr(reference, setting.name)
        return self.replace(**{setting.name: setting.on if setting.off(wanted) else wanted})


@functools.cache
def settings_fields() -> tuple[Setting, ...]:
    """Every run-time setting, in declaration order (built once: every settings copy checks them)."""
    return tuple(Setting(name=item.name, **item.metadata["setting"]) for item in dataclasses.fields(RuntimeSettings))


@functools.cache
def controls() -> Mapping[str, Setting]:
    """The settings a preview can toggle, by control name (``smoothing``, ``denoise``, ...)."""
    return MappingProxyType({s.control: s for s in settings_fields() if s.control is not None})


@functools.cache
def adjustables() -> Mapping[str, Setting]:
    """The numeric settings a preview can step up and down (``step``; window keys ``keys``: down,
    up), by setting name (``ev``)."""
    return MappingProxyType({s.name: s for s in settings_fields() if s.step is not None})
