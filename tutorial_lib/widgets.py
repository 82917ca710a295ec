"""Interactive explorers for the course (core ipywidgets only).

Each explorer is a thin wrapper: a pure function builds a figure from plain arguments
(`shape_figure`, `spread_figure`, `length_figure`, `barrier_figure`, `bounds_figure`), and the widget
only maps sliders onto those arguments. Call the pure function directly to get the same figure
without a running kernel (that is what the notebooks' tests do).

`make_shape` draws the hard or soft test shapes used throughout the course.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Mapping

import torch
from matplotlib.figure import Figure
from torch import Tensor

from tutorial_lib import descriptors as D
from tutorial_lib import penalties as P
from tutorial_lib.plots import shapes as plots

__all__ = [
    "SHAPES",
    "make_shape",
    "describe",
    "descriptor_gradient",
    "shape_figure",
    "shape_explorer",
    "spread_figure",
    "spread_explorer",
    "reference_perimeter",
    "length_figure",
    "length_explorer",
    "barrier_figure",
    "barrier_explorer",
    "quantile_bounds",
    "bounds_figure",
    "bounds_explorer",
]

SHAPES = ("disk", "ellipse", "square", "octagon", "crescent")


def make_shape(
    kind: str = "disk",
    *,
    size: int | tuple[int, int] = 64,
    centre: tuple[float, float] | None = None,
    radius: float = 12.0,
    aspect: float = 0.5,
    angle: float = 0.0,
    softness: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """A 2-D shape of shape (H, W): binary if `softness == 0`, else `sigmoid(signed distance / softness)`.

    - "disk": radius `radius`; "square": half-side `radius` (unrotated, its side is 2·radius + 1
      pixels when the centre falls on a pixel, 2·radius when it falls between two);
    - "octagon": the regular octagon with apothem `radius`, sides along the grid's 8 directions;
    - "ellipse": semi-axes `radius` and `aspect · radius`, the first along the rows when `angle = 0`;
    - "crescent": a disk minus a smaller disk shifted towards the right (soft: the product of the
      outer disk's and the inner disk's complement's soft maps);
    `angle` (degrees) rotates the shape counter-clockwise; `centre` is (row, col), default the middle.
    Pixel (i, j) is inside when its centre is (signed distance >= 0).
    """
    if kind not in SHAPES:
        raise ValueError(f"kind: expected one of {SHAPES}, got {kind!r}")
    if softness < 0 or radius <= 0:
        raise ValueError(
            "softness, radius: expected softness >= 0 and radius > 0, "
            f"got softness={softness}, radius={radius}"
        )
    h, w = (size, size) if isinstance(size, int) else size
    cr, cc = ((h - 1) / 2, (w - 1) / 2) if centre is None else centre
    r = torch.arange(h, dtype=torch.float64)[:, None] - cr
    c = torch.arange(w, dtype=torch.float64)[None, :] - cc
    th = math.radians(angle)
    u = r * math.cos(th) + c * math.sin(th)  # along the rows when angle = 0
    v = -r * math.sin(th) + c * math.cos(th)  # along the cols when angle = 0
    if kind == "disk":
        sd = radius - torch.sqrt(u**2 + v**2)
    elif kind == "square":
        sd = radius - torch.maximum(u.abs(), v.abs())
    elif kind == "octagon":
        diagonal = (u.abs() + v.abs()) / math.sqrt(2)
        sd = radius - torch.maximum(torch.maximum(u.abs(), v.abs()), diagonal)
    elif kind == "ellipse":
        b = max(aspect * radius, 1e-6)
        rho = torch.sqrt((u / radius) ** 2 + (v / b) ** 2)
        # a signed distance near the boundary, up to the axes' ratio
        sd = (1 - rho) * min(radius, b)
    else:  # crescent: the outer disk times the complement of the inner one
        outer = radius - torch.sqrt(u**2 + v**2)
        inner = 0.8 * radius - torch.sqrt(u**2 + (v - 0.45 * radius) ** 2)
        if softness == 0:
            m = ((outer >= 0) & (inner <= 0)).to(torch.float64)
        else:
            m = torch.sigmoid(outer / softness) * torch.sigmoid(-inner / softness)
        return m.to(dtype)
    if softness == 0:
        m = (sd >= 0).to(torch.float64)
    else:
        m = torch.sigmoid(sd / softness)
    return m.to(dtype)


def _batch(m: Tensor) -> Tensor:
    if m.ndim != 2:
        raise ValueError(f"m: expected one 2-D map (H, W), got shape {tuple(m.shape)}")
    return m[None, None]


def describe(m: Tensor, *, connectivity: int = 8) -> dict[str, Tensor]:
    """The course's descriptors of one 2-D map (H, W): size, centroid (2), spread (2), length, compactness."""
    p = _batch(m)
    return {
        "size": D.soft_size(p)[0, 0],
        "centroid": D.soft_centroid(p)[0, 0],
        "spread": D.soft_dist_centroid(p)[0, 0],
        "length": D.soft_length(p, connectivity=connectivity)[0, 0],
        "compactness": D.soft_compactness(p, connectivity=connectivity)[0, 0],
    }


#: Scalar descriptor values whose gradient the explorer can show: name -> (descriptor, index).
GRADIENTS: dict[str, tuple[str, int]] = {
    "size": ("size", 0),
    "centroid row": ("centroid", 0),
    "centroid col": ("centroid", 1),
    "spread row": ("dist_centroid", 0),
    "spread col": ("dist_centroid", 1),
    "length": ("length", 0),
}


def descriptor_gradient(m: Tensor, which: str) -> Tensor:
    """d(descriptor value)/d(p) for every pixel of the 2-D map `m`, by autograd (float64)."""
    if which not in GRADIENTS:
        raise ValueError(f"which: expected one of {sorted(GRADIENTS)}, got {which!r}")
    name, index = GRADIENTS[which]
    p = m.detach().to(torch.float64).requires_grad_(True)
    value = D.DESCRIPTORS[name](_batch(p))[0, 0, index]
    (grad,) = torch.autograd.grad(value, p)
    return grad


def _table(soft: Mapping[str, Tensor], hard: Mapping[str, Tensor]) -> str:
    def fmt(v: Tensor) -> str:
        return ", ".join(f"{x:7.2f}" for x in v.reshape(-1).tolist())

    lines = [f"{'':12s}{'soft':>18s}  {'hard':>18s}"]
    for k in ("size", "centroid", "spread", "length"):
        lines.append(f"{k:12s}{fmt(soft[k]):>18s}  {fmt(hard[k]):>18s}")
    return "\n".join(lines)


def shape_figure(
    kind: str = "disk",
    row: float = 31.5,
    col: float = 31.5,
    radius: float = 12.0,
    angle: float = 0.0,
    softness: float = 1.0,
    gradient_of: str = "centroid col",
    size: int = 64,
) -> Figure:
    """Soft shape with centroid and spread, its hard/soft descriptor table, and one gradient map."""
    kw = dict(kind=kind, size=size, centre=(row, col), radius=radius, angle=angle)
    soft = make_shape(**kw, softness=softness)
    hard = make_shape(**kw, softness=0.0)
    ds, dh = describe(soft), describe(hard)
    return plots.plot_shape_report(
        soft,
        centroid=ds["centroid"],
        spread=ds["spread"],
        grad=descriptor_gradient(soft, gradient_of),
        grad_title=f"d({gradient_of}) / dp",
        table=_table(ds, dh),
        title=f"{kind}, softness {softness:g}",
    )


def spread_figure(
    radius: float = 20.0,
    aspect: float = 0.5,
    angle: float = 0.0,
    softness: float = 0.0,
    size: int = 64,
) -> Figure:
    """An ellipse with its per-axis spread; the text compares it with the semi-axes a/2, b/2.

    For a filled ellipse with semi-axes a (rows) and b (cols), the per-axis spread is (a/2, b/2);
    rotated by θ it becomes (sqrt(a² cos²θ + b² sin²θ)/2, sqrt(a² sin²θ + b² cos²θ)/2): per-axis
    spreads are not rotation invariant.
    """
    m = make_shape(
        "ellipse", size=size, radius=radius, aspect=aspect, angle=angle, softness=softness
    )
    d = describe(m)
    a, b, th = radius, aspect * radius, math.radians(angle)
    expect = (
        math.sqrt(a**2 * math.cos(th) ** 2 + b**2 * math.sin(th) ** 2) / 2,
        math.sqrt(a**2 * math.sin(th) ** 2 + b**2 * math.cos(th) ** 2) / 2,
    )
    sr, sc = d["spread"].tolist()
    text = f"spread (row, col) = ({sr:.2f}, {sc:.2f})\ncontinuous ellipse: ({expect[0]:.2f}, {expect[1]:.2f})"
    return plots.plot_descriptor_overlay(
        m,
        centroid=d["centroid"],
        spread=d["spread"],
        title=f"ellipse a={a:g}, b={b:g}, θ={angle:g}°",
        text=text,
    )


def reference_perimeter(kind: str, *, size: int, radius: float) -> float | None:
    """The true perimeter of an unrotated `make_shape(kind, size=size, radius=radius)`, or None.

    Disk: 2πr (the continuous circle). Square: 4 × its side in pixels, counted on the mask: 2r + 1
    when the centre falls on a pixel (odd size), 2r when it falls between pixels (even size).
    """
    if kind == "disk":
        return 2 * math.pi * radius
    if kind == "square":
        side = int(make_shape("square", size=size, radius=radius).amax(dim=1).sum())
        return 4.0 * side
    return None


def length_figure(
    kind: str = "disk",
    radius: float = 10.0,
    softness: float = 0.0,
    connectivity: int = 8,
    size: int = 40,
) -> Figure:
    """The length as four (or two) sums of squared shifted differences, against the true perimeter."""
    m = make_shape(kind, size=size, radius=radius, softness=softness)
    fig = plots.plot_shift_differences(m, neighbourhood=connectivity)
    length = float(D.soft_length(_batch(m), connectivity=connectivity)[0, 0, 0])
    perimeter = reference_perimeter(kind, size=size, radius=radius)
    if perimeter:
        fig.suptitle(
            f"soft_length = {length:.1f};  perimeter ≈ {perimeter:.1f};  ratio {length / perimeter:.2f}"
        )
    else:
        fig.suptitle(f"soft_length = {length:.1f}")
    return fig


def barrier_figure(t: float = 5.0, z_min: float = -1.0, z_max: float = 1.0) -> Figure:
    """The log-barrier extension ψ_t, the plain log barrier and the quadratic penalty, with slopes."""
    z = torch.linspace(z_min, z_max, 801, dtype=torch.float64, requires_grad=True)
    curves, slopes = {}, {}
    fns: dict[str, Callable[[Tensor], Tensor]] = {
        f"log-barrier extension (t={t:.3g})": lambda x: P.log_barrier_extension(x, t),
        f"log barrier −log(−z)/t (t={t:.3g})": lambda x: -torch.log(-x) / t,
        "quadratic relu(z)²": P.quadratic_penalty,
    }
    for name, fn in fns.items():
        y = fn(z)
        (g,) = torch.autograd.grad(y.nan_to_num(nan=0.0).sum(), z)
        y = y.detach()
        # no slope where the penalty itself is undefined (the plain barrier for z >= 0)
        curves[name], slopes[name] = y, torch.where(torch.isfinite(y), g, torch.nan)
    switch = -1.0 / t**2
    return plots.plot_penalty_curves(
        z.detach(),
        curves,
        derivatives=slopes,
        marks={f"−1/t² = {switch:.3g}": switch},
        ylim=(-1.0, 4.0),
        slope_ylim=(-0.5, max(2.5, 1.3 * t)),
        title="Penalties for a constraint z ≤ 0",
    )


def quantile_bounds(
    values: Mapping[str, Tensor], margin: float = 0.1, quantile: float = 0.0
) -> dict[str, tuple[float, float]]:
    """Per-class constant bounds [q-quantile·(1−margin), (1−q)-quantile·(1+margin)] of a population."""
    bounds = {}
    for name, v in values.items():
        v = v.reshape(-1).to(torch.float64)
        lo = float(torch.quantile(v, quantile)) * (1 - margin)
        hi = float(torch.quantile(v, 1 - quantile)) * (1 + margin)
        bounds[name] = (lo, hi)
    return bounds


def bounds_figure(
    values: Mapping[str, Tensor],
    margin: float = 0.1,
    *,
    held_out: Mapping[str, Tensor] | None = None,
    xlabel: str = "value",
    quantile: float = 0.0,
) -> Figure:
    """Bounds chosen on `values` (`quantile_bounds`), and the share of `held_out` inside them.

    Without `held_out` the coverage is measured on `values` themselves, which flatters the bounds:
    a population always fits bounds cut from it.
    """
    bounds = quantile_bounds(values, margin, quantile)
    shown = values if held_out is None else held_out
    title = "the population the bounds come from" if held_out is None else "held-out values"
    return plots.plot_population_bounds(shown, bounds, xlabel=xlabel, title=title)


# ---------------------------------------------------------------------------------------------
# The widgets: sliders mapped onto the pure functions above. ipywidgets (and IPython) load inside
# each explorer, so that scripts and tests use the functions above without the Jupyter stack.


def _interactive(fn: Callable[..., Figure], controls: dict):
    """A column of controls above an output that shows `fn(**values)` as a PNG after every change."""
    import ipywidgets as w
    from IPython.display import Image, display

    out = w.Output()

    def update(**kwargs):
        fig = fn(**kwargs)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        out.clear_output(wait=True)
        with out:
            display(Image(data=buf.getvalue()))

    def on_change(_change=None):
        update(**{k: c.value for k, c in controls.items()})

    for c in controls.values():
        if hasattr(c, "continuous_update"):
            c.continuous_update = False  # redraw on release, not at every step of a drag
        c.observe(on_change, names="value")
    on_change()
    style = {"description_width": "initial"}
    for c in controls.values():
        c.style = style
    box = w.HBox(list(controls.values()), layout=w.Layout(flex_flow="row wrap"))
    return w.VBox([box, out])


def shape_explorer(size: int = 64):
    """Move, resize and rotate a shape, set its softness; see the descriptors and a gradient map."""
    import ipywidgets as w

    mid = (size - 1) / 2
    controls = {
        "kind": w.Dropdown(options=SHAPES, value="disk", description="shape"),
        "row": w.FloatSlider(value=mid, min=8, max=size - 8, step=0.5, description="row"),
        "col": w.FloatSlider(value=mid, min=8, max=size - 8, step=0.5, description="col"),
        "radius": w.FloatSlider(value=12, min=2, max=size / 4, step=0.5, description="radius"),
        "angle": w.FloatSlider(value=0, min=-90, max=90, step=5, description="angle °"),
        "softness": w.FloatSlider(value=1.0, min=0.0, max=6.0, step=0.25, description="softness"),
        "gradient_of": w.Dropdown(
            options=list(GRADIENTS), value="centroid col", description="gradient of"
        ),
    }
    return _interactive(lambda **k: shape_figure(**k, size=size), controls)


def spread_explorer(size: int = 64):
    """An ellipse whose semi-axes and angle you set: watch the per-axis spread."""
    import ipywidgets as w

    controls = {
        "radius": w.FloatSlider(value=20, min=4, max=size / 2 - 4, step=1, description="a"),
        "aspect": w.FloatSlider(value=0.5, min=0.2, max=1.0, step=0.05, description="b / a"),
        "angle": w.FloatSlider(value=0, min=-90, max=90, step=5, description="angle °"),
        "softness": w.FloatSlider(value=0.0, min=0.0, max=4.0, step=0.25, description="softness"),
    }
    return _interactive(lambda **k: spread_figure(**k, size=size), controls)


def length_explorer(size: int = 40):
    """The length of a disk or square: shifted differences, 4- or 8-neighbourhood, softness."""
    import ipywidgets as w

    controls = {
        "kind": w.Dropdown(options=SHAPES, value="disk", description="shape"),
        "radius": w.FloatSlider(value=10, min=2, max=size / 2 - 3, step=0.5, description="radius"),
        "softness": w.FloatSlider(value=0.0, min=0.0, max=4.0, step=0.25, description="softness"),
        "connectivity": w.Dropdown(options=[8, 4], value=8, description="neighbourhood"),
    }
    return _interactive(lambda **k: length_figure(**k, size=size), controls)


def barrier_explorer():
    """The log-barrier extension as t grows: a barrier inside, a line of slope t outside."""
    import ipywidgets as w

    controls = {
        "t": w.FloatLogSlider(value=5.0, base=10, min=0, max=2, step=0.05, description="t"),
    }
    return _interactive(barrier_figure, controls)


def bounds_explorer(
    values: Mapping[str, Tensor],
    *,
    held_out: Mapping[str, Tensor] | None = None,
    xlabel: str = "value",
):
    """Bounds from a population (a margin, a trimmed quantile); who of `held_out` falls inside."""
    import ipywidgets as w

    controls = {
        "margin": w.FloatSlider(value=0.1, min=0.0, max=0.5, step=0.01, description="margin"),
        "quantile": w.FloatSlider(
            value=0.0, min=0.0, max=0.2, step=0.01, description="trim quantile"
        ),
    }
    figure = functools.partial(bounds_figure, values, held_out=held_out, xlabel=xlabel)
    return _interactive(figure, controls)
