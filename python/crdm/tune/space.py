"""The Section-4 search space, declared in one place.

Each :class:`Dimension` is a parameter of the CRDM's Section-4 experiment (the network
builder :func:`crdm.input_recurrent`, :class:`crdm.StdpParams`, the plastic edges, the
:class:`crdm.InputCode`) or of its read-out (edges, feature form, metric, sample time, size).
:data:`SEARCH_SPACE` holds the defaults: ranges around the paper's values, wide enough to
cross the regimes from silent to saturated. A user narrows or widens it with
:func:`parse_override` (``name=low:high``, ``name=low:high:log``, ``name=a,b,c`` or
``name=value`` to fix it) or a JSON file of the same entries (:func:`load_space_file`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from crdm.errors import ValidationError

__all__ = ["SEARCH_SPACE", "Dimension", "apply_overrides", "check_params",
           "load_configurations", "load_space_file", "parse_override", "space_from_dict",
           "space_to_dict", "suggest"]

Kind = Literal["float", "int", "categorical", "fixed"]


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: a range (``float``/``int``, ``log`` for a log-uniform prior),
    a set of ``choices``, or one ``fixed`` value. ``when`` = ``(other, values)`` searches it
    only in trials whose ``other`` parameter takes one of ``values``."""

    name: str
    kind: Kind
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    when: tuple[str, tuple[Any, ...]] | None = None
    help: str = ""

    def __post_init__(self) -> None:
        field = f"space.{self.name}"
        if self.kind in ("float", "int"):
            if self.low is None or self.high is None or not (
                    math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
                raise ValidationError(f"invalid range for `{field}`: [{self.low}, {self.high}]",
                                      field, (self.low, self.high))
            if self.log and self.low <= 0:
                raise ValidationError(f"invalid range for `{field}`: a log range needs low > 0, "
                                      f"got {self.low}", field, self.low)
        elif self.kind in ("categorical", "fixed"):
            if not self.choices or (self.kind == "fixed" and len(self.choices) != 1):
                raise ValidationError(f"`{field}` needs choices", field, self.choices)
        else:
            raise ValidationError(f"invalid kind for `{field}`: {self.kind!r}", field, self.kind)


def _f(name: str, low: float, high: float, log: bool = True, help: str = "",
       when: tuple[str, tuple[Any, ...]] | None = None) -> Dimension:
    return Dimension(name, "float", low, high, log, when=when, help=help)


def _c(name: str, choices: Iterable[Any], help: str = "",
       when: tuple[str, tuple[Any, ...]] | None = None) -> Dimension:
    return Dimension(name, "categorical", choices=tuple(choices), when=when, help=help)


#: The default search space (the paper's value of each parameter lies inside its range).
SEARCH_SPACE: tuple[Dimension, ...] = (
    _c("size", (50, 100, 200), "recurrent nodes N"),
    # latency spread: conduction velocity (uniform in [v, v·spread]) and the recurrent volume
    _f("velocity_m_s", 0.05, 2.0, help="slowest conduction velocity (m/s; paper 0.2)"),
    _f("velocity_spread", 1.0, 10.0, help="fastest / slowest velocity (1: one velocity)"),
    _f("volume_um", 300.0, 4000.0, help="side of the recurrent cube (µm; 1400)"),
    _f("input_refractory_ms", 2.0, 30.0, help="input refractory period (ms; 10)"),
    _f("recurrent_refractory_ms", 1.0, 30.0, help="recurrent refractory period (ms; 5)"),
    _f("threshold", 0.2, 5.0, help="firing threshold θ (1)"),
    _f("tau_m_ms", 2.0, 200.0, help="membrane time constant τm (ms; 20)"),
    _f("excitatory_fraction", 0.5, 0.95, log=False, help="excitatory edges (0.7)"),
    _f("inhibitory_ratio", 0.5, 5.0, help="inhibitory / excitatory weight scale (7/3)"),
    _f("input_weight", 0.01, 0.5, help="input weight scale (0.08)"),
    _f("recurrent_weight", 0.005, 0.5, help="recurrent weight scale (0.05)"),
    _f("a_plus", 1e-4, 0.1, help="STDP potentiation amplitude A+ (0.01)"),
    _f("a_minus", 1e-4, 0.1, help="STDP depression amplitude A− (0.005)"),
    _f("tau_plus_ms", 2.0, 60.0, help="STDP potentiation window τ+ (ms; 16.8)"),
    _f("tau_minus_ms", 2.0, 100.0, help="STDP depression window τ− (ms; 33.7)"),
    _c("weight_bounds", ("none", "symmetric"), "STDP weight bounds: none, or [−B, B]"),
    _f("weight_bound", 0.02, 2.0, help="B", when=("weight_bounds", ("symmetric",))),
    _c("plastic", ("all", "recurrent"), "edges with STDP (paper: all)"),
    _c("input_code", ("binary", "latency", "rate", "graded"), "crdm.InputCode kind"),
    _f("pixel_threshold", 0.0, 0.5, log=False, help="grey level a pixel must exceed"),
    _f("latency_window_ms", 2.0, 50.0, help="latency of the darkest active pixel (ms)",
       when=("input_code", ("latency",))),
    _c("latency_repeat", (True, False), "latency code: repeat every R, or one volley",
       when=("input_code", ("latency",))),
    _f("rate_max_hz", 20.0, 500.0, help="rate code: rate of a white pixel (Hz)",
       when=("input_code", ("rate",))),
    _c("feature_edges", ("all", "recurrent"), "weights read: every edge into the recurrent "
       "layer, or recurrent → recurrent only"),
    _c("feature_form", ("weights", "delta", "normalised", "trajectory"),
       "w(t), Δw(t), Δw(t)/‖Δw(t)‖, or Δw at every sample time side by side"),
    _c("metric", ("euclidean", "cosine"), "k-NN distance"),
    _c("sample_time_ms", (100.0, 200.0, 300.0, 400.0, 500.0, 600.0), "sample time (ms)",
       when=("feature_form", ("weights", "delta", "normalised"))),
)


def space_to_dict(space: Iterable[Dimension]) -> list[dict[str, Any]]:
    """The space as JSON-ready records (stored with a study, so a resumed study is checked)."""
    out = []
    for d in space:
        rec = asdict(d)
        rec["choices"] = list(d.choices)
        rec["when"] = None if d.when is None else [d.when[0], list(d.when[1])]
        out.append(rec)
    return out


def space_from_dict(records: Iterable[Mapping[str, Any]]) -> tuple[Dimension, ...]:
    return tuple(Dimension(**{**r, "choices": tuple(r["choices"]),
                              "when": None if r["when"] is None
                              else (r["when"][0], tuple(r["when"][1]))}) for r in records)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_override(text: str) -> tuple[str, dict[str, Any]]:
    """``name=low:high[:log|:linear]``, ``name=a,b,c`` (choices) or ``name=value`` (fixed)."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise ValidationError(f"invalid space override {text!r}: expected name=low:high, "
                              "name=a,b,c or name=value", "space", text)
    if ":" in rest:
        parts = rest.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "linear")):
            raise ValidationError(f"invalid range in {text!r}: expected low:high, low:high:log "
                                  "or low:high:linear", f"space.{name}", rest)
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValidationError(f"invalid range in {text!r}: bounds must be numbers",
                                  f"space.{name}", rest) from None
        spec: dict[str, Any] = {"low": low, "high": high}
        if len(parts) == 3:
            spec["log"] = parts[2] == "log"
        return name, spec
    values = [_value(v.strip()) for v in rest.split(",")]
    return name, ({"value": values[0]} if len(values) == 1 else {"choices": values})


def load_space_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """A JSON object ``{name: {"low", "high"[, "log"]} | {"choices": [...]} | {"value": v}}``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read the space file {path}: {exc}", "space_file",
                              str(path)) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValidationError(f"the space file {path} must hold an object of objects",
                              "space_file", str(path))
    return data


def load_configurations(path: str | Path) -> list[Any]:
    """A JSON file of trial parameters to run first: one object ``{name: value}`` or a list of
    them (checked against the study's space by :func:`check_params`)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read the configurations file {path}: {exc}", "enqueue",
                              str(path)) from None
    return data if isinstance(data, list) else [data]


def apply_overrides(space: Iterable[Dimension],
                    overrides: Mapping[str, Mapping[str, Any]]) -> tuple[Dimension, ...]:
    """``space`` with each named dimension narrowed, widened, re-chosen or fixed."""
    dims = {d.name: d for d in space}
    for name, spec in overrides.items():
        if name not in dims:
            raise ValidationError(f"unknown search dimension {name!r} (known: "
                                  f"{', '.join(dims)})", f"space.{name}", name)
        old = dims[name]
        _check_spec(old, spec)
        if "value" in spec:
            dims[name] = replace(old, kind="fixed", choices=(spec["value"],), low=None,
                                 high=None)
        elif "choices" in spec:
            dims[name] = replace(old, kind="categorical", choices=tuple(spec["choices"]),
                                 low=None, high=None)
        else:
            if old.kind not in ("float", "int"):
                raise ValidationError(f"`space.{name}` is categorical: give choices a,b,c or "
                                      "one value", f"space.{name}", dict(spec))
            dims[name] = replace(old, low=float(spec.get("low", old.low)),
                                 high=float(spec.get("high", old.high)),
                                 log=bool(spec.get("log", old.log)))
    return tuple(dims.values())


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_spec(old: Dimension, spec: Any) -> None:
    """An override must suit its dimension: numbers for a numeric one (positive integers for
    ``size``), the declared choices for a categorical one."""
    field = f"space.{old.name}"
    if not isinstance(spec, Mapping) or not spec:
        raise ValidationError(f"`{field}`: expected {{low, high[, log]}}, {{choices}} or "
                              f"{{value}}, got {spec!r}", field, repr(spec))
    unknown = set(spec) - {"low", "high", "log", "choices", "value"}
    if unknown:
        raise ValidationError(f"`{field}`: unknown keys {sorted(unknown)}", field,
                              sorted(unknown))
    if "value" in spec or "choices" in spec:
        values = [spec["value"]] if "value" in spec else spec["choices"]
        if not isinstance(values, (list, tuple)) or not values:
            raise ValidationError(f"`{field}`: choices must be a non-empty list", field,
                                  repr(values))
        for v in values:
            if old.name == "size":
                ok = _is_real(v) and int(v) == v and v >= 1
            elif old.kind in ("float", "int") or old.name == "sample_time_ms":
                ok = _is_real(v) and (not old.log or v > 0)
            else:
                ok = isinstance(v, (str, bool)) and v in old.choices
            if not ok:
                raise ValidationError(f"invalid value for `{field}`: {v!r} (" + (
                    f"one of {', '.join(map(str, old.choices))}" if old.kind == "categorical"
                    and old.name not in ("size", "sample_time_ms") else "a finite number")
                    + ")", field, repr(v))
        return
    for key in ("low", "high"):
        if key in spec and not _is_real(spec[key]):
            raise ValidationError(f"invalid value for `{field}.{key}`: {spec[key]!r}", field,
                                  repr(spec[key]))
    if "log" in spec and not isinstance(spec["log"], bool):
        raise ValidationError(f"`{field}.log` must be true or false", field, repr(spec["log"]))


def suggest(trial: Any, space: Iterable[Dimension]) -> dict[str, Any]:
    """The parameters of one Optuna ``trial``; conditional ones only where their condition
    holds (Optuna's define-by-run space)."""
    params: dict[str, Any] = {}
    for d in space:
        if d.when is not None and params.get(d.when[0]) not in d.when[1]:
            continue
        if d.kind == "fixed":
            params[d.name] = d.choices[0]
        elif d.kind == "categorical":
            params[d.name] = trial.suggest_categorical(d.name, list(d.choices))
        elif d.kind == "int":
            params[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high), log=d.log)
        else:
            params[d.name] = trial.suggest_float(d.name, d.low, d.high, log=d.log)
    return params


def _same_choice(value: Any, choice: Any) -> bool:
    # True == 1 in Python; a flag and a number are different choices here
    return value == choice and isinstance(value, bool) == isinstance(choice, bool)


def check_params(space: Iterable[Dimension], params: Mapping[str, Any],
                 field: str = "enqueue", origin: str | None = None) -> dict[str, Any]:
    """``params`` (some or all of a trial's parameters, as ``trials.csv`` lists them) checked
    against ``space``: known names, values inside their range or among their choices, and no
    value for a dimension whose condition the others rule out. Returns them as the sampler
    records them (floats for real dimensions, ints for integer ones). Errors name ``field``
    and the parameter, and ``origin`` (a file) where given."""
    where_from = "" if origin is None else f" in {origin}"
    if not isinstance(params, Mapping):
        raise ValidationError(f"`{field}`{where_from} must be an object of parameters, got "
                              f"{type(params).__name__}", field, repr(params))
    dims = {d.name: d for d in space}
    out: dict[str, Any] = {}
    for name, value in params.items():
        where = f"{field}.{name}"
        if name not in dims:
            raise ValidationError(f"unknown search dimension {name!r} in `{field}`{where_from} "
                                  f"(known: {', '.join(dims)})", where, name)
        d = dims[name]
        if d.kind in ("categorical", "fixed"):
            if not any(_same_choice(value, c) for c in d.choices):
                raise ValidationError(f"invalid value for `{where}`{where_from}: {value!r} (the "
                                      f"space allows {', '.join(map(repr, d.choices))})",
                                      where, repr(value))
            out[name] = next(c for c in d.choices if _same_choice(value, c))
            continue
        ok = _is_real(value) and d.low <= value <= d.high and (
            d.kind == "float" or int(value) == value)
        if not ok:
            raise ValidationError(f"invalid value for `{where}`{where_from}: {value!r} (the "
                                  f"space allows {'integers' if d.kind == 'int' else 'numbers'} "
                                  f"in [{d.low:g}, {d.high:g}])", where, repr(value))
        out[name] = float(value) if d.kind == "float" else int(value)
    for name in out:
        d = dims[name]
        if d.when is not None and d.when[0] in out and not any(
                _same_choice(out[d.when[0]], c) for c in d.when[1]):
            raise ValidationError(f"`{field}.{name}`{where_from} is searched only when "
                                  f"{d.when[0]} is one of {', '.join(map(str, d.when[1]))}, "
                                  f"not {out[d.when[0]]!r}", f"{field}.{name}", repr(out[name]))
    return out
