"""The grid of a study: which settings of a base preset it may vary, and the configs of its cells.

    axes = [parse_vary("margin_scale=1,5,20"), parse_vary("penalty=log_barrier,quadratic")]
    cells = study_cells(get_preset("toy-cardiac-descriptors", fast=True), axes, seeds=(0,))

A key and what each of its values does to the base `TrainConfig` (`KEYS` holds the same):

| key             | values                                 | the change                               |
|-----------------|----------------------------------------|------------------------------------------|
| `descriptors`   | `all`, `-NAME`, `NAME+NAME`            | the base's terms: all, all but one, only |
|                 |                                        | those (an ablation)                      |
| `margin_scale`  | numbers > 0                            | every term's margin x the number         |
| `margin.NAMES`  | numbers >= 0 (NAMES: `centroid`,       | the margin of those descriptors' terms,  |
|                 | `centroid+dist_centroid`, ...)         | in their mode (px or a fraction)         |
| `margins`       | `toy`, `paper`, `paper-corrected`      | a named set of margins (`MARGIN_SETS`)   |
| `weights`       | `toy`, `equal`                         | the toy weights, or 1e-2 each (paper)    |
| `without`       | `nothing`, `tight-margins`, `weights`, | one of the toy presets' three deviations |
|                 | `init-bias`                            | from the paper removed                   |
| `penalty`       | `log_barrier`, `quadratic`             | the penalty                              |
| `t0`, `t_factor`| numbers > 0, numbers >= 1              | the barrier's schedule t = t0 factor^e   |
| `noise`         | numbers in [0, 1]                      | `bound_noise`: an annotator's relative   |
|                 |                                        | error on the bounds' values              |
| `init_bias`     | `default`, `class_sizes`               | the output bias initialisation           |
| `size`          | integers, multiples of the stride      | the toy images' side (px)                |
| `epochs`, `lr`  | integers >= 1, numbers > 0             | the run's length, Adam's learning rate   |

A cell is one combination of the axes' values, trained once per seed (`config.seed`; the data stays
the base's). Every value is checked when the grid is made, before any run starts: an unknown key,
a value of the wrong kind, an empty or repeated value, more than two axes or a key given twice is
a ValueError naming the key and what it takes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tutorial_lib.config import INIT_BIAS, TrainConfig
from tutorial_lib.penalties import PENALTIES

__all__ = [
    "KEYS",
    "MARGIN_SETS",
    "TOY_DEVIATIONS",
    "Axis",
    "Cell",
    "cell_label",
    "make_axis",
    "parse_vary",
    "study_cells",
]

MAX_AXES = 2
# (margin, mode) per descriptor: the toy presets', the authors' (length 10 in percentage mode:
# [0, 11 L]) and the authors' with that length margin read as ±10 %
MARGIN_SETS: dict[str, dict[str, tuple[float, str]]] = {
    "toy": {
        "size": (0.05, "percentage"),
        "centroid": (1.0, "abs"),
        "dist_centroid": (1.0, "abs"),
        "length": (0.10, "percentage"),
    },
    "paper": {
        "size": (0.10, "percentage"),
        "centroid": (20.0, "abs"),
        "dist_centroid": (20.0, "abs"),
        "length": (10.0, "percentage"),
    },
    "paper-corrected": {
        "size": (0.10, "percentage"),
        "centroid": (20.0, "abs"),
        "dist_centroid": (20.0, "abs"),
        "length": (0.10, "percentage"),
    },
}
PAPER_WEIGHT = 1e-2
# `without=...`: the toy presets' settings that depart from the paper, each as a change
TOY_DEVIATIONS = ("nothing", "tight-margins", "weights", "init-bias")


@dataclass(frozen=True)
class Axis:
    """One varied key and its values (parsed: numbers as numbers, names as strings)."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Cell:
    """One run of the grid: the axes' values, the seed, and the config that trains it."""

    values: dict[str, Any]
    seed: int
    config: TrainConfig


# --------------------------------------------------------------------------- value parsers


def _number(low: float, closed: bool, high: float | None = None) -> Callable[[str, Any], float]:
    def parse(key: str, text: Any) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            value = float("nan")
        ok = value >= low if closed else value > low
        if not (ok and (high is None or value <= high)) or isinstance(text, bool):
            span = (
                f"in [{low:g}, {high:g}]"
                if high is not None
                else f"{'>=' if closed else '>'} {low:g}"
            )
            raise ValueError(f"vary {key}: expected numbers {span}, got {text!r}")
        return value

    return parse


def _integer(low: int) -> Callable[[str, Any], int]:
    def parse(key: str, text: Any) -> int:
        try:
            value = int(str(text))
        except ValueError:
            value = low - 1
        if value < low or isinstance(text, bool):
            raise ValueError(f"vary {key}: expected integers >= {low}, got {text!r}")
        return value

    return parse


def _choice(choices: Sequence[str]) -> Callable[[str, Any], str]:
    def parse(key: str, text: Any) -> str:
        if text not in choices:
            raise ValueError(f"vary {key}: expected values among {tuple(choices)}, got {text!r}")
        return str(text)

    return parse


def _descriptor_set(key: str, text: Any) -> str:
    if not isinstance(text, str) or not text.strip("+-"):
        raise ValueError(f"vary {key}: expected all, -NAME or NAME+NAME, got {text!r}")
    return text


# --------------------------------------------------------------------------- value appliers


def _descriptor_names(cfg: TrainConfig, key: str, names: Sequence[str]) -> None:
    known = sorted({t.descriptor for t in cfg.terms})
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(
            f"vary {key}: expected descriptors of the base's terms {known}, got {unknown}"
        )


def _with_descriptors(cfg: TrainConfig, key: str, value: str) -> TrainConfig:
    if value == "all":
        return cfg
    drop = value.startswith("-")
    names = value[1:].split("+") if drop else value.split("+")
    _descriptor_names(cfg, key, names)
    terms = tuple(t for t in cfg.terms if (t.descriptor in names) != drop)
    if not terms:
        raise ValueError(f"vary {key}: expected at least one term left, got none for {value!r}")
    return dataclasses.replace(cfg, terms=terms)


def _with_margin_scale(cfg: TrainConfig, key: str, value: float) -> TrainConfig:
    terms = tuple(dataclasses.replace(t, margin=t.margin * value) for t in cfg.terms)
    return dataclasses.replace(cfg, terms=terms)


def _with_margin_of(cfg: TrainConfig, key: str, value: float) -> TrainConfig:
    names = key.split(".", 1)[1].split("+")
    _descriptor_names(cfg, key, names)
    terms = tuple(
        dataclasses.replace(t, margin=value) if t.descriptor in names else t for t in cfg.terms
    )
    return dataclasses.replace(cfg, terms=terms)


def _with_margin_set(cfg: TrainConfig, key: str, value: str) -> TrainConfig:
    table = MARGIN_SETS[value]
    terms = tuple(
        dataclasses.replace(t, margin=table[t.descriptor][0], mode=table[t.descriptor][1])
        if t.descriptor in table and not t.is_constant
        else t
        for t in cfg.terms
    )
    return dataclasses.replace(cfg, terms=terms)


def _with_weights(cfg: TrainConfig, key: str, value: str) -> TrainConfig:
    if value == "toy":
        return cfg
    terms = tuple(dataclasses.replace(t, weight=PAPER_WEIGHT) for t in cfg.terms)
    return dataclasses.replace(cfg, terms=terms)


def _without(cfg: TrainConfig, key: str, value: str) -> TrainConfig:
    if value == "tight-margins":
        return _with_margin_set(cfg, key, "paper-corrected")
    if value == "weights":
        return _with_weights(cfg, key, "equal")
    if value == "init-bias":
        return dataclasses.replace(cfg, init_bias="default")
    return cfg


def _field(name: str) -> Callable[[TrainConfig, str, Any], TrainConfig]:
    def apply(cfg: TrainConfig, key: str, value: Any) -> TrainConfig:
        return dataclasses.replace(cfg, **{name: value})

    return apply


def _with_size(cfg: TrainConfig, key: str, value: int) -> TrainConfig:
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, size=value))


# key -> (parse, apply, needs descriptor terms)
KEYS: dict[str, tuple[Callable, Callable, bool]] = {
    "descriptors": (_descriptor_set, _with_descriptors, True),
    "margin_scale": (_number(0.0, closed=False), _with_margin_scale, True),
    "margin.": (_number(0.0, closed=True), _with_margin_of, True),  # margin.NAME[+NAME...]
    "margins": (_choice(tuple(MARGIN_SETS)), _with_margin_set, True),
    "weights": (_choice(("toy", "equal")), _with_weights, True),
    "without": (_choice(TOY_DEVIATIONS), _without, True),
    "penalty": (_choice(tuple(PENALTIES)), _field("penalty"), True),
    "t0": (_number(0.0, closed=False), _field("t0"), True),
    "t_factor": (_number(1.0, closed=True), _field("t_factor"), True),
    "noise": (_number(0.0, closed=True, high=1.0), _field("bound_noise"), True),
    "init_bias": (_choice(INIT_BIAS), _field("init_bias"), False),
    "size": (_integer(16), _with_size, False),
    "epochs": (_integer(1), _field("epochs"), False),
    "lr": (_number(0.0, closed=False), _field("lr"), False),
}


def _entry(key: str) -> tuple[Callable, Callable, bool]:
    if isinstance(key, str) and key.startswith("margin.") and len(key) > len("margin."):
        return KEYS["margin."]
    if key not in KEYS or key == "margin.":
        known = [k if k != "margin." else "margin.NAME[+NAME]" for k in KEYS]
        raise ValueError(f"vary: expected a key among {known}, got {key!r}")
    return KEYS[key]


def make_axis(key: str, values: Sequence[Any]) -> Axis:
    """An `Axis` of `key` with `values` parsed and checked (strings from a command line, or
    numbers and names from Python)."""
    parse = _entry(key)[0]
    if isinstance(values, str) or not values:
        raise ValueError(f"vary {key}: expected one value or more, got {values!r}")
    parsed = tuple(parse(key, v.strip() if isinstance(v, str) else v) for v in values)
    if len(set(parsed)) != len(parsed):
        raise ValueError(f"vary {key}: expected distinct values, got {list(values)}")
    return Axis(key, parsed)


def parse_vary(text: str) -> Axis:
    """`"KEY=V1,V2,..."` (a `--vary` option) -> Axis."""
    key, sep, values = text.partition("=") if isinstance(text, str) else ("", "", "")
    if not sep or not key.strip() or not values.strip():
        raise ValueError(f"vary: expected KEY=VALUE[,VALUE...], got {text!r}")
    return make_axis(key.strip(), [v for v in values.split(",")])


def cell_label(values: dict[str, Any]) -> str:
    """`margin_scale=5,penalty=quadratic`: a cell's values as text (numbers in short form)."""
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def _check_axes(base: TrainConfig, axes: Sequence[Axis]) -> None:
    if not isinstance(base, TrainConfig):
        raise ValueError(f"base: expected a TrainConfig (a preset), got {type(base).__name__}")
    if not axes or len(axes) > MAX_AXES or not all(isinstance(a, Axis) for a in axes):
        raise ValueError(f"vary: expected one or two axes (Axis, parse_vary), got {list(axes)!r}")
    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        raise ValueError(f"vary: expected each key once, got {keys}")
    for axis in axes:
        if _entry(axis.key)[2] and base.method != "descriptors":
            raise ValueError(
                f"vary {axis.key}: expected a descriptors base preset, got {base.name!r} "
                f"(method {base.method!r})"
            )


def _check_stride(config: TrainConfig, key: str) -> None:
    from tutorial_lib.models import build_model  # only for a size axis: the model's stride

    stride = build_model(config.model, 1, 2, **dict(config.model_options)).stride
    if config.data.size % stride:
        raise ValueError(
            f"vary {key}: expected multiples of {stride} (the {config.model}'s stride), got "
            f"{config.data.size}"
        )


def study_cells(base: TrainConfig, axes: Sequence[Axis], seeds: Sequence[int] = (0,)) -> list[Cell]:
    """Every (combination of the axes' values, seed) as a `Cell`, the first axis varying slowest.

    Each config is checked (TrainConfig's own checks; a size against the network's stride). A
    cell's config keeps the base's name: two cells (or two studies) with the same settings have
    the same config, and so share one run folder (`runlog.config_run_dir`).
    """
    _check_axes(base, axes)
    if (
        isinstance(seeds, int)
        or not seeds
        or len(set(seeds)) != len(seeds)
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        raise ValueError(f"seeds: expected distinct integers >= 0 (one at least), got {seeds!r}")
    combos: list[dict[str, Any]] = [{}]
    for axis in axes:
        combos = [{**c, axis.key: v} for c in combos for v in axis.values]
    cells = []
    for values in combos:
        config = base
        for key, value in values.items():
            config = _entry(key)[1](config, key, value)
        if "size" in values:
            _check_stride(config, "size")
        cells += [Cell(values, seed, dataclasses.replace(config, seed=seed)) for seed in seeds]
    return cells
