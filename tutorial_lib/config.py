"""The training configuration: `TrainConfig` (with `DataConfig`, `AugmentConfig`) and its JSON form.

A config is a frozen dataclass that checks every field when it is made, `dataclasses.replace`
included, so a bad value fails before any file is written: `ValueError("<field>: expected X, got
Y")`, nested fields named `data.<field>` / `augment.<field>`. `config_to_dict` gives the JSON-ready
dict saved as a run's `config.json`; `config_from_dict` reads it back (unknown keys refused).
The named settings are in `tutorial_lib.presets`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from tutorial_lib.bounds import EMPTY_POLICIES
from tutorial_lib.data.toy.dataset import default_split_sizes
from tutorial_lib.data.toy.options import OPTIONS, make_options
from tutorial_lib.losses import NORMALISATIONS, DescriptorTerm
from tutorial_lib.models import MODELS
from tutorial_lib.penalties import PENALTIES

__all__ = [
    "AMP_CHOICES",
    "AUGMENT_TRANSFORMS",
    "BLUR_PADDINGS",
    "DATASETS",
    "IMAGE_INTERPOLATIONS",
    "DICE_ABSENT",
    "INIT_BIAS",
    "LR_SCHEDULES",
    "METHODS",
    "SCALE_OFFSETS",
    "AugmentConfig",
    "DataConfig",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
]

METHODS = ("ce", "descriptors")
LR_SCHEDULES = ("paper", "paper-skip-epoch0", "constant")
AMP_CHOICES = ("auto", "off", "bf16")
DICE_ABSENT = ("skip", "one")
INIT_BIAS = ("default", "class_sizes")
DATASETS = ("toy-cardiac", "toy-prostate", "acdc", "promise12")
AUGMENT_TRANSFORMS = ("blur", "rotate", "scale")  # in the order they are applied
BLUR_PADDINGS = ("replicate", "reflect")
IMAGE_INTERPOLATIONS = ("bilinear", "nearest")
SCALE_OFFSETS = ("centre", "random")

# --------------------------------------------------------------------------- field checks


def _fail(name: str, expected: str, got: Any) -> NoReturn:
    raise ValueError(f"{name}: expected {expected}, got {got!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _one_of(name: str, value: Any, choices: Sequence[str] | Mapping[str, Any]) -> None:
    names = tuple(choices)
    if not (isinstance(value, str) and value in names):
        _fail(name, f"one of {names}", value)


def _int_at_least(name: str, value: Any, low: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not (_is_int(value) and value >= low):
        _fail(name, f"{'None or ' if optional else ''}an integer >= {low}", value)


def _optional_bool(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        _fail(name, "None or a bool", value)


def _mapping(name: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        _fail(name, "a mapping (dict) of options", value)


def _tuples(value: Any) -> Any:
    """JSON lists as tuples, nested ones included (a constant-bound table is a list of lists)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _positive_range(name: str, value: Any) -> None:
    """A (low, high) pair of finite numbers with 0 < low <= high."""
    ok = isinstance(value, tuple) and len(value) == 2 and all(_is_finite(v) for v in value)
    if not (ok and 0 < value[0] <= value[1]):
        _fail(name, "a (low, high) pair of finite numbers with 0 < low <= high", value)


def _set_tuple(obj: Any, name: str) -> None:
    """Store a list given for a tuple field as a tuple, as `DescriptorTerm` does with its classes."""
    value = getattr(obj, name)
    if isinstance(value, list):
        object.__setattr__(obj, name, tuple(value))


# --------------------------------------------------------------------------- the dataclasses


@dataclass(frozen=True)
class AugmentConfig:
    """Online augmentation, each transform applied with probability `p` per image, in this order.

    Paper: Gaussian blur of the image only (sigma in `blur_sigma`), rotation within
    ±`rotation_deg`, isotropic scale within `scale`. `transforms` names those in use. The other
    fields choose how each is done (the authors' choice first, as in
    `tutorial_lib.presets.AUTHORS_AUGMENT`): `blur_kernel_size` 5 (a fixed 5x5 kernel) or None
    (radius ceil(3 sigma)); `blur_padding` "reflect" or "replicate" at the image edges;
    `image_interpolation` "nearest" or "bilinear" for the image's rotation and scaling (labels
    always nearest); `scale_offset` "random" (resize to floor(s H) pixels, then crop or zero-pad
    back to H at a uniform random integer offset) or "centre" (scale about the image centre).
    The defaults are the earlier recipe of this library (the toy presets use it with their own
    ranges), so an older config.json reads as it ran.
    """

    enabled: bool = True
    p: float = 0.5
    blur_sigma: tuple[float, float] = (0.5, 2.0)
    rotation_deg: float = 30.0
    scale: tuple[float, float] = (0.8, 1.2)
    transforms: tuple[str, ...] = AUGMENT_TRANSFORMS
    blur_kernel_size: int | None = None
    blur_padding: str = "replicate"
    image_interpolation: str = "bilinear"
    scale_offset: str = "centre"

    def __post_init__(self) -> None:
        for name in ("blur_sigma", "scale", "transforms"):
            _set_tuple(self, name)
        if not isinstance(self.enabled, bool):
            _fail("augment.enabled", "a bool", self.enabled)
        if not (_is_finite(self.p) and 0 <= self.p <= 1):
            _fail("augment.p", "a probability in [0, 1]", self.p)
        _positive_range("augment.blur_sigma", self.blur_sigma)
        if not (_is_finite(self.rotation_deg) and self.rotation_deg >= 0):
            _fail("augment.rotation_deg", "a finite angle >= 0 (degrees)", self.rotation_deg)
        _positive_range("augment.scale", self.scale)
        _check_augment_choices(self)


def _check_augment_choices(a: AugmentConfig) -> None:
    """The fields that say which transforms run and how (see `AugmentConfig`)."""
    names = a.transforms
    in_order = tuple(t for t in AUGMENT_TRANSFORMS if isinstance(names, tuple) and t in names)
    if not (isinstance(names, tuple) and names == in_order):
        _fail(
            "augment.transforms", f"distinct names among {AUGMENT_TRANSFORMS} in that order", names
        )
    size = a.blur_kernel_size
    if size is not None and not (_is_int(size) and size >= 3 and size % 2 == 1):
        _fail("augment.blur_kernel_size", "None or an odd integer >= 3", size)
    _one_of("augment.blur_padding", a.blur_padding, BLUR_PADDINGS)
    _one_of("augment.image_interpolation", a.image_interpolation, IMAGE_INTERPOLATIONS)
    _one_of("augment.scale_offset", a.scale_offset, SCALE_OFFSETS)


@dataclass(frozen=True)
class DataConfig:
    """Which data: a prepared dataset on disk, or a toy dataset generated on demand.

    `size`, `n_patients`, `generator_seed` and `shape_options` only matter for the toy datasets
    (they are passed to `tutorial_lib.data.toy.dataset.ensure_toy_dataset`; `shape_options` are the
    fields of its `ToyCardiacOptions` / `ToyProstateOptions`, empty for a real dataset).
    `max_train_slices` keeps the first N training slices (None: all).
    """

    dataset: str
    size: int = 256
    n_patients: int | None = None
    generator_seed: int = 0
    shape_options: Mapping[str, Any] = field(default_factory=dict)
    max_train_slices: int | None = None

    def __post_init__(self) -> None:
        _one_of("data.dataset", self.dataset, DATASETS)
        _int_at_least("data.size", self.size, 16)
        _check_patients(self.n_patients)
        _int_at_least("data.generator_seed", self.generator_seed, 0)
        _check_shape_options(self.dataset, self.shape_options)
        _int_at_least("data.max_train_slices", self.max_train_slices, 1, optional=True)


def _check_patients(n_patients: Any) -> None:
    """None, or a patient count the toy generator can split into train / validation / test."""
    if n_patients is None:
        return
    ok, reason = _is_int(n_patients), ""
    if ok:
        try:
            default_split_sizes(n_patients)
        except ValueError as err:
            ok, reason = False, f" ({err})"
    if not ok:
        _fail("data.n_patients", f"None or an integer the toy split accepts{reason}", n_patients)


def _check_shape_options(dataset: str, options: Any) -> None:
    _mapping("data.shape_options", options)
    if dataset not in OPTIONS:
        if options:
            _fail("data.shape_options", f"no options for the real dataset {dataset!r}", options)
        return
    try:
        make_options(dataset, **options)
    except (TypeError, ValueError) as err:
        _fail("data.shape_options", f"options the {dataset} generator accepts ({err})", options)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved as the run's `config.json`.

    Attributes (the non-obvious ones):
        method: "ce" (cross-entropy on full masks) or "descriptors" (the shape-descriptor loss).
        lr_schedule: "paper" (halve when `epoch % (best_epoch + 20) == 0`, so also after
            epoch 0), "paper-skip-epoch0" (the same rule, not at epoch 0), "constant".
        terms, penalty, normalisation, empty_policy: the descriptor loss (see tutorial_lib.losses).
        bound_noise: an annotator's relative error on the values the bounds come from: each
            training slice gets, once, a factor 1 + e per constrained value, e ~ N(0, bound_noise²)
            (drawn from `seed`; tutorial_lib.run_setup.value_noise_table); 0: exact values.
        t0, t_factor, t_max: the log-barrier parameter, t = min(t0 * factor^epoch, t_max).
        selection_classes: the classes whose mean validation Dice picks the best epoch (None: all
            foreground classes).
        dice_absent: the training and validation Dice of a class absent from both the prediction
            and the ground truth (of a slice, or of a volume for 3-D Dice), and so the model
            selection: "skip" (undefined, left out of the means) or "one" (scores 1, as the
            authors' (2·0 + 1e-8) / (0 + 1e-8)).
        amp: "auto" (bfloat16 autocast on CUDA when supported), "off", "bf16".
        channels_last: None = on CUDA only.
        data_on_device: None = keep the whole training set on the device when it fits.
        init_bias: "default" (the network's own initialisation) or "class_sizes" (output bias =
            log of the mean class proportions of the training set, i.e. the mean of the size
            descriptor: no pixel label is used).
    """

    name: str
    method: str
    data: DataConfig
    model: str
    model_options: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    epochs: int = 200
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.99)
    lr_schedule: str = "paper"
    augment: AugmentConfig = AugmentConfig()
    terms: tuple[DescriptorTerm, ...] = ()
    penalty: str = "log_barrier"
    normalisation: str = "paper"
    empty_policy: str = "paper"
    bound_noise: float = 0.0
    t0: float = 1.0
    t_factor: float = 1.1
    t_max: float | None = None
    selection_classes: tuple[int, ...] | None = None
    dice_absent: str = "skip"
    init_bias: str = "default"
    seed: int = 0
    amp: str = "auto"
    channels_last: bool | None = None
    data_on_device: bool | None = None

    def __post_init__(self) -> None:
        for name in ("betas", "terms", "selection_classes"):
            _set_tuple(self, name)
        _check_choices(self)
        _check_numbers(self)
        _check_parts(self)


def _check_choices(cfg: TrainConfig) -> None:
    """The fields with a fixed set of values, each checked against the set where it lives."""
    if not (isinstance(cfg.name, str) and cfg.name and not set(cfg.name) & set("/\\")):
        _fail("name", "a non-empty name without path separators", cfg.name)
    _one_of("method", cfg.method, METHODS)
    _one_of("model", cfg.model, MODELS)
    _one_of("lr_schedule", cfg.lr_schedule, LR_SCHEDULES)
    _one_of("penalty", cfg.penalty, PENALTIES)
    _one_of("normalisation", cfg.normalisation, NORMALISATIONS)
    _one_of("empty_policy", cfg.empty_policy, EMPTY_POLICIES)
    _one_of("init_bias", cfg.init_bias, INIT_BIAS)
    _one_of("dice_absent", cfg.dice_absent, DICE_ABSENT)
    _one_of("amp", cfg.amp, AMP_CHOICES)
    _optional_bool("channels_last", cfg.channels_last)
    _optional_bool("data_on_device", cfg.data_on_device)


def _check_numbers(cfg: TrainConfig) -> None:
    _int_at_least("batch_size", cfg.batch_size, 1)
    _int_at_least("epochs", cfg.epochs, 1)
    _int_at_least("seed", cfg.seed, 0)
    if not (_is_finite(cfg.lr) and cfg.lr > 0):
        _fail("lr", "a finite number > 0", cfg.lr)
    betas = cfg.betas
    if not (
        isinstance(betas, tuple)
        and len(betas) == 2
        and all(_is_finite(b) and 0 <= b < 1 for b in betas)
    ):
        _fail("betas", "a (beta1, beta2) pair of numbers in [0, 1)", betas)
    if not (_is_finite(cfg.bound_noise) and 0 <= cfg.bound_noise <= 1):
        _fail("bound_noise", "a relative error in [0, 1]", cfg.bound_noise)
    if not (_is_finite(cfg.t0) and cfg.t0 > 0):
        _fail("t0", "a finite number > 0", cfg.t0)
    if not (_is_finite(cfg.t_factor) and cfg.t_factor >= 1):
        _fail("t_factor", "a finite number >= 1", cfg.t_factor)
    if cfg.t_max is not None and not (_is_finite(cfg.t_max) and cfg.t_max >= cfg.t0):
        _fail("t_max", f"None or a finite number >= t0 ({cfg.t0!r})", cfg.t_max)


def _check_parts(cfg: TrainConfig) -> None:
    """The nested parts (data, augmentation, model options, terms) and the selected classes."""
    if not isinstance(cfg.data, DataConfig):
        _fail("data", "a DataConfig", cfg.data)
    if not isinstance(cfg.augment, AugmentConfig):
        _fail("augment", "an AugmentConfig", cfg.augment)
    _mapping("model_options", cfg.model_options)
    if not isinstance(cfg.terms, tuple):
        _fail("terms", "a tuple of DescriptorTerm", cfg.terms)
    for term in cfg.terms:
        if not isinstance(term, DescriptorTerm):
            _fail("terms", "DescriptorTerm items", term)
    if cfg.method == "descriptors" and not cfg.terms:
        _fail("terms", "at least one descriptor term for method 'descriptors'", cfg.terms)
    classes = cfg.selection_classes
    if classes is not None and not (
        isinstance(classes, tuple)
        and classes
        and all(_is_int(c) and c >= 0 for c in classes)
        and len(set(classes)) == len(classes)
    ):
        _fail("selection_classes", "None or distinct class indices >= 0 (at least one)", classes)


# --------------------------------------------------------------------------- to and from a dict


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists, mappings plain dicts)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return plain(cfg)


def _fields_from(where: str, data: Any, cls: type) -> dict[str, Any]:
    """`data`'s values for dataclass `cls` (lists as tuples); unknown or missing keys refused."""
    if not isinstance(data, Mapping):
        _fail(where, f"a mapping of {cls.__name__} fields", data)
    fields = dataclasses.fields(cls)
    known = [f.name for f in fields]
    unknown = sorted(map(str, set(data) - set(known)))
    if unknown:
        raise ValueError(f"{where}: expected keys among {known}, got unknown {unknown}")
    required = [
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in data]
    if missing:
        raise ValueError(f"{where}: expected the keys {required}, got none for {missing}")
    return {k: _tuples(v) for k, v in data.items()}


def _term_from_dict(where: str, data: Any) -> DescriptorTerm:
    values = _fields_from(where, data, DescriptorTerm)
    values["options"] = dict(values.get("options", {}))
    return DescriptorTerm(**values)


def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Inverse of `config_to_dict`; unknown keys (at any level) raise ValueError."""
    values = _fields_from("config", data, TrainConfig)
    values["data"] = DataConfig(**_fields_from("data", data["data"], DataConfig))
    if "augment" in data:
        values["augment"] = AugmentConfig(**_fields_from("augment", data["augment"], AugmentConfig))
    terms = data.get("terms", ())
    if not isinstance(terms, list | tuple):
        _fail("terms", "a list of descriptor terms", terms)
    values["terms"] = tuple(_term_from_dict(f"terms[{i}]", t) for i, t in enumerate(terms))
    if "model_options" in data:
        values["model_options"] = dict(data["model_options"])
    return TrainConfig(**values)
