"""Vectorised pixel rendering shared by the toy generators (torch, CPU or GPU, seeded).

Everything here works on a batch of N slices at once: shapes are drawn from per-slice
parameter tensors of shape (N,) broadcast against a (H, W) pixel grid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def pixel_grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column index grids of shape (1, size, 1) and (1, 1, size), float32."""
    ar = torch.arange(size, dtype=torch.float32)
    return ar.view(1, size, 1), ar.view(1, 1, size)


def ellipse_radius(
    rows: torch.Tensor,
    cols: torch.Tensor,
    cy: torch.Tensor,
    cx: torch.Tensor,
    semi_u: torch.Tensor,
    semi_v: torch.Tensor,
    angle: torch.Tensor,
    wobble: torch.Tensor | None = None,
    wobble_phase: torch.Tensor | None = None,
    harmonic: int = 3,
) -> torch.Tensor:
    """Normalised elliptic radius (N, H, W): < 1 inside the ellipse.

    The ellipse has centre (cy, cx), semi-axes `semi_u` along direction `angle` (radians,
    measured from the column axis towards the row axis) and `semi_v` across it. An optional
    `wobble` bends the outline: radius scaled by 1 + wobble * cos(harmonic * theta + phase).
    """

    def col(t: torch.Tensor) -> torch.Tensor:
        return t.view(-1, 1, 1)

    dy, dx = rows - col(cy), cols - col(cx)
    cos_a, sin_a = torch.cos(col(angle)), torch.sin(col(angle))
    u = dx * cos_a + dy * sin_a
    v = -dx * sin_a + dy * cos_a
    rho = ellipse_q(u, v, semi_u, semi_v).sqrt_()
    if wobble is not None:
        rho.div_(wobble_factor(u, v, wobble, wobble_phase, harmonic))
    return rho


def ellipse_frame(
    rows: torch.Tensor, cols: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, angle: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates (N, H, W) along (u) and across (v) the direction `angle` about (cy, cx)."""
    dy, dx = rows - cy.view(-1, 1, 1), cols - cx.view(-1, 1, 1)
    cos_a, sin_a = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    return dx * cos_a + dy * sin_a, dy * cos_a - dx * sin_a


def wobble_factor(
    u: torch.Tensor, v: torch.Tensor, wobble: torch.Tensor, phase: torch.Tensor, harmonic: int = 3
) -> torch.Tensor:
    """1 + wobble * cos(harmonic * theta + phase), theta the polar angle of (u, v)."""
    theta = torch.atan2(v, u)  # then in place, same operations in the same order
    return (
        theta.mul_(harmonic).add_(phase.view(-1, 1, 1)).cos_().mul_(wobble.view(-1, 1, 1)).add_(1)
    )


def inside_ellipse(
    u: torch.Tensor,
    v: torch.Tensor,
    semi_u: torch.Tensor,
    semi_v: torch.Tensor,
    factor: torch.Tensor | None = None,
) -> torch.Tensor:
    """Boolean mask (u / semi_u)^2 + (v / semi_v)^2 < factor^2 (factor: a wobble, or 1)."""
    return inside_ellipse_sq(u, v, semi_u, semi_v, None if factor is None else factor.square())


def inside_ellipse_sq(
    u: torch.Tensor,
    v: torch.Tensor,
    semi_u: torch.Tensor,
    semi_v: torch.Tensor,
    factor_sq: torch.Tensor | None = None,
) -> torch.Tensor:
    """`inside_ellipse` given the squared factor (computed once when several masks share it)."""
    q = ellipse_q(u, v, semi_u, semi_v)
    return q < 1 if factor_sq is None else q < factor_sq


def ellipse_q(
    u: torch.Tensor, v: torch.Tensor, semi_u: torch.Tensor, semi_v: torch.Tensor
) -> torch.Tensor:
    """(u / semi_u)^2 + (v / semi_v)^2 as a new (N, H, W) tensor (computed in place)."""
    q = (u / semi_u.view(-1, 1, 1)).square_()
    return q.add_(torch.div(v, semi_v.view(-1, 1, 1)).square_())


def smooth_field(low_res: torch.Tensor, size: int, mode: str = "bicubic") -> torch.Tensor:
    """Upsample a (N, g, g) low-resolution random field to (N, size, size).

    Above 64 pixels the field is made at 64 and then enlarged bilinearly: it is smooth at
    that scale, and bicubic interpolation costs four times as much per pixel.
    """
    step = min(size, 64)
    out = F.interpolate(low_res.unsqueeze(1), size=(step, step), mode=mode, align_corners=False)
    if step < size:
        out = F.interpolate(out, size=(size, size), mode="bilinear", align_corners=False)
    return out.squeeze(1)


def gaussian_blur(images: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Blur each image of (N, H, W) with its own Gaussian sigma (pixels; 0 = untouched).

    Separable grouped convolution with one kernel per image, reflect padding.
    """
    n = images.shape[0]
    radius = max(1, math.ceil(3 * float(sigmas.max()))) if n else 1
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    s = sigmas.to(images).clamp_min(1e-3).view(n, 1)
    kernel = torch.exp(-0.5 * (offsets.view(1, -1) / s) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    x = _reflect_pad(images, radius).unsqueeze(0)
    x = F.conv2d(x, kernel.view(n, 1, 1, -1), groups=n)
    x = F.conv2d(x, kernel.view(n, 1, -1, 1), groups=n)
    out = x.squeeze(0)
    if n and bool((sigmas > 0).all()):
        return out  # what the torch.where below would select everywhere
    return torch.where((sigmas.to(images.device) > 0).view(n, 1, 1), out, images)


def _reflect_pad(images: torch.Tensor, r: int) -> torch.Tensor:
    """F.pad(images, (r, r, r, r), mode="reflect") for (N, H, W), by slice copies (faster)."""
    n, h, w = images.shape
    if n == 0 or r >= min(h, w):
        return F.pad(images.unsqueeze(0), (r, r, r, r), mode="reflect").squeeze(0)
    out = images.new_empty((n, h + 2 * r, w + 2 * r))
    middle = out[:, r : r + h]
    middle[:, :, r : r + w] = images
    middle[:, :, :r] = images[:, :, 1 : r + 1].flip(2)
    middle[:, :, r + w :] = images[:, :, w - 1 - r : w - 1].flip(2)
    out[:, :r] = out[:, r + 1 : 2 * r + 1].flip(1)
    out[:, r + h :] = out[:, h - 1 : h - 1 + r].flip(1)
    return out


def rician_noise(
    images: torch.Tensor,
    sigma: torch.Tensor,
    generator: torch.Generator,
    *,
    scratch: torch.Tensor | None = None,
    inplace: bool = False,
) -> torch.Tensor:
    """Magnitude of the image plus complex Gaussian noise of std `sigma` per image (N,).

    Buffers that the caller no longer needs can be reused (same numbers, fewer allocations):
    `scratch`, a contiguous tensor shaped and typed like `images`, is overwritten, and with
    `inplace=True` so is `images`.
    """
    s = sigma.view(-1, 1, 1)
    real = torch.randn(images.shape, generator=generator, out=scratch).mul_(s).add_(images)
    imag = torch.randn(images.shape, generator=generator, out=images if inplace else None)
    imag.mul_(s)
    return real.square_().add_(imag.square_()).sqrt_()


def minmax_per_volume(
    images: torch.Tensor, volume_index: torch.Tensor, *, inplace: bool = False
) -> torch.Tensor:
    """Min-max normalise to [0, 1] over each group of slices sharing a `volume_index`.

    `inplace=True` overwrites `images` with the result (no new buffer).
    """
    n_vol = int(volume_index.max()) + 1
    flat = images.reshape(images.shape[0], -1)
    slice_lo, slice_hi = flat.amin(dim=1), flat.amax(dim=1)  # (faster than aminmax)
    lo = torch.full((n_vol,), float("inf")).scatter_reduce(0, volume_index, slice_lo, reduce="amin")
    hi = torch.full((n_vol,), float("-inf")).scatter_reduce(
        0, volume_index, slice_hi, reduce="amax"
    )
    lo, hi = lo[volume_index].view(-1, 1, 1), hi[volume_index].view(-1, 1, 1)
    out = images.sub_(lo) if inplace else images - lo
    return out.div_((hi - lo).clamp_min(1e-8)).clamp_(0, 1)
