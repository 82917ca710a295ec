"""tutorial_lib: segmentation supervised by a few global shape descriptors.

A course and library around Kervadec et al., "Beyond pixel-wise supervision for segmentation:
A few global shape descriptors might be surprisingly good!" (MIDL 2021).

The public API: the stable names of ``STABLE`` (``__all__``), importable from ``tutorial_lib``
(loaded on first use, so ``import tutorial_lib`` stays light) or from their home module, e.g.
``from tutorial_lib import ShapeDescriptorLoss`` or ``from tutorial_lib.losses import
ShapeDescriptorLoss``. ``COURSE_MODULES`` are the course's and the command line's tooling
(figures, widgets, exercises, runs): their public names work, with less promise of stability.
docs/design.md ("Public API (stable)") lists the same; the notebooks import nothing else.
"""

__version__ = "0.1.0"

STABLE: dict[str, tuple[str, ...]] = {
    "tutorial_lib.descriptors": (
        "DESCRIPTORS",
        "register_descriptor",
        "soft_centroid",
        "soft_compactness",
        "soft_covariance",
        "soft_dist_centroid",
        "soft_eccentricity",
        "soft_length",
        "soft_orientation",
        "soft_size",
        "unregister_descriptor",
    ),
    "tutorial_lib.losses": (
        "DescriptorTerm",
        "ShapeDescriptorLoss",
        "cross_entropy_loss",
        "shape_descriptor_loss",
    ),
    "tutorial_lib.bounds": ("labels_to_onehot", "population_bounds", "precise_bounds"),
    "tutorial_lib.penalties": ("log_barrier_extension", "quadratic_penalty"),
    "tutorial_lib.schedules": ("LRSchedule", "MultiplyT"),
    "tutorial_lib.weak_labels": ("WeakLabels", "weak_labels_from_masks", "weak_labels_from_values"),
    "tutorial_lib.weak_label_files": ("read_weak_labels", "write_weak_labels"),
    "tutorial_lib.shape_annotations": ("ellipse_descriptors",),
    "tutorial_lib.metrics": ("dice_2d", "dice_3d_per_volume", "dice_counts", "hd95", "mean_dice"),
    "tutorial_lib.models": ("build_model", "count_parameters"),
    "tutorial_lib.device": ("get_device", "set_cpu_threads"),
    "tutorial_lib.data.datasets": ("load_split",),
    "tutorial_lib.data.toy.dataset": ("ensure_toy_dataset", "toy_spacing"),
}
"""Home module -> its stable names: each says in its docstring which notebook teaches it."""

COURSE_MODULES = (
    "tutorial_lib.plots",
    "tutorial_lib.widgets",
    "tutorial_lib.exercises",
    "tutorial_lib.config",
    "tutorial_lib.presets",
    "tutorial_lib.train",
    "tutorial_lib.run_setup",
    "tutorial_lib.evaluation",
    "tutorial_lib.reproduce",
    "tutorial_lib.runlog",
    "tutorial_lib.concurrent_runs",
    "tutorial_lib.loss_tables",
    "tutorial_lib.data.fetch",
    "tutorial_lib.data.prepare",
    "tutorial_lib.data.storage",
    "tutorial_lib.free_mask",
    "tutorial_lib.lab_widgets",
    "tutorial_lib.study",
    "tutorial_lib.study_grid",
    "tutorial_lib.checks",
)
"""The course's tooling: every public name of these modules may be used by the notebooks."""

_HOME = {name: module for module, names in STABLE.items() for name in names}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> object:
    """A stable name, imported from its home module on first use (then kept here)."""
    from importlib import import_module  # here: `import tutorial_lib` imports nothing

    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'tutorial_lib' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
