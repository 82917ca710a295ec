"""The paper's online augmentation, batched on the tensors' device and seeded.

`augment_batch(images, labels, generator, config)` follows a `tutorial_lib.config.AugmentConfig`.
Each transform of `config.transforms` is applied to each sample independently with probability
`config.p`, in this order:
1. Gaussian blur of the image only, sigma uniform in `blur_sigma` pixels; the kernel has
   `blur_kernel_size` taps (the authors: 5, so at sigma = 2 the kernel is cut at ±1 sigma and the
   blur's own std is sqrt(sum k² w_k) ≈ 1.29 px) or a radius of ceil(3 max sigma);
2. rotation by an angle uniform in ±`rotation_deg` degrees about the image centre;
3. scaling by a factor s uniform in `scale`: about the centre (`scale_offset="centre"`), or as the
   authors do (`"random"`): resize to n = floor(s H) pixels, then crop H pixels from n starting at
   o uniform in {0, ..., n - H} (s > 1), or zero-pad the n pixels back to H with the resized
   image starting at -o uniform in {0, ..., H - n} (s < 1); per axis, one offset for the image
   and its labels. The content moves by up to |n - H| / 2 pixels against a centred scaling (±26 px
   at 256 pixels).
Rotation and scaling are one `affine_grid` / `grid_sample` call for the whole batch: output pixel
y (normalised) reads the input at R(angle) (y / zoom + shift), zoom = n / H and shift =
(H - n + 2 o) / n, so the crop or pad offset is a per-sample translation and nearest sampling
keeps the value sets (labels always nearest, the image as `image_interpolation` asks; zero
padding = background). The blur is one grouped convolution with a kernel per sample. Samples that
a transform skips are returned bit-identical.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tutorial_lib.config import AugmentConfig


def _check_inputs(images: torch.Tensor, labels: torch.Tensor | None) -> None:
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(
            f"images: expected float images of shape (B, C, H, W), got shape "
            f"{tuple(images.shape)}, dtype {images.dtype}"
        )
    if labels is not None:
        expected = (images.shape[0], *images.shape[2:])
        if tuple(labels.shape) != expected or labels.is_floating_point():
            raise ValueError(
                f"labels: expected integer labels of shape {expected}, got shape "
                f"{tuple(labels.shape)}, dtype {labels.dtype}"
            )


def _draw(generator: torch.Generator, rows: int, n: int, device: torch.device) -> torch.Tensor:
    """(rows, n) uniforms from `generator` (on its own device), moved to `device`."""
    return torch.rand(rows, n, generator=generator, device=generator.device).to(device)


def blur_images(
    images: torch.Tensor,
    sigmas: torch.Tensor,
    max_sigma: float | None = None,
    *,
    kernel_size: int | None = None,
    padding: str = "replicate",
) -> torch.Tensor:
    """Blur sample b of (B, C, H, W) with a Gaussian of std sigmas[b] pixels.

    One separable grouped convolution with weights exp(-k² / 2 sigma²) / sum, k = -r..r: r =
    `kernel_size` // 2, or ceil(3 * max_sigma) when `kernel_size` is None (give `max_sigma`, an
    upper bound of `sigmas`, to avoid reading `sigmas` back from the GPU). The edges are padded by
    `padding`: "replicate" (the edge pixel repeated) or "reflect" (mirrored about it).
    """
    b, c, h, w = images.shape
    if kernel_size is not None:
        odd = isinstance(kernel_size, int) and not isinstance(kernel_size, bool)
        if not (odd and kernel_size >= 1 and kernel_size % 2 == 1):
            raise ValueError(
                f"kernel_size: expected None or an odd integer >= 1, got {kernel_size}"
            )
        radius = kernel_size // 2
    else:
        if max_sigma is None:
            max_sigma = float(sigmas.max()) if b else 0.0
        radius = max(1, math.ceil(3 * max_sigma))
    if padding not in ("replicate", "reflect"):
        raise ValueError(f"padding: expected 'replicate' or 'reflect', got {padding!r}")
    if padding == "reflect" and radius >= min(h, w):
        raise ValueError(
            f"images: expected a height and width > the blur radius {radius} to reflect, got "
            f"{h}x{w}"
        )
    if b * c == 0:  # nothing to blur (a grouped convolution needs one group at least)
        return images.clone()
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    s = sigmas.to(images.dtype).clamp_min(1e-3).repeat_interleave(c).view(-1, 1)
    kernel = torch.exp(-0.5 * (offsets.view(1, -1) / s) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    x = images.reshape(1, b * c, h, w)
    x = F.pad(x, (radius, radius, radius, radius), mode=padding)
    x = F.conv2d(x, kernel.view(b * c, 1, 1, -1), groups=b * c)
    x = F.conv2d(x, kernel.view(b * c, 1, -1, 1), groups=b * c)
    return x.view(b, c, h, w)


def affine_matrices(
    angles_rad: torch.Tensor,
    zoom: torch.Tensor,
    zoom_y: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, 2, 3) `affine_grid` matrices: output y (normalised x, y) reads the input at
    R(angle) (y / zoom + shift). `zoom` (B,) enlarges the content (along x, and along y unless
    `zoom_y` is given); `shift` (2, B) is the x and y translation before the rotation (None: 0,
    a rotation and zoom about the image centre)."""
    cos, sin = torch.cos(angles_rad), torch.sin(angles_rad)
    cos_x, sin_x = cos / zoom, sin / zoom
    cos_y, sin_y = (cos_x, sin_x) if zoom_y is None else (cos / zoom_y, sin / zoom_y)
    if shift is None:
        move_x = move_y = torch.zeros_like(cos_x)
    else:
        move_x = cos * shift[0] - sin * shift[1]
        move_y = sin * shift[0] + cos * shift[1]
    rows = [torch.stack([cos_x, -sin_y, move_x], -1), torch.stack([sin_x, cos_y, move_y], -1)]
    return torch.stack(rows, 1)


def _random_offset_warp(
    scale: torch.Tensor, u: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The authors' resize-then-crop-or-pad, for x (row 0) and y (row 1) of (2, B) tensors: n =
    floor(s H) pixels, d = n - H, an integer offset o = min(d, 0) + min(floor(u (|d| + 1)), |d|),
    then zoom = n / H and shift = (2 o - d) / n. Also returns which samples change size."""
    sizes = torch.tensor([[width], [height]], dtype=torch.float64, device=scale.device)
    n = torch.floor(scale.double() * sizes)
    diff = n - sizes
    span = diff.abs()
    offset = diff.clamp(max=0) + torch.minimum(torch.floor(u.double() * (span + 1)), span)
    zoom = (n / sizes).to(scale.dtype)
    shift = ((2 * offset - diff) / n).to(scale.dtype)
    return zoom, shift, (diff != 0).any(0)


def _warp(
    images: torch.Tensor,
    labels: torch.Tensor | None,
    theta: torch.Tensor,
    moved: torch.Tensor,
    image_mode: str,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One grid_sample per tensor with `theta`; samples where `moved` is False are kept as given."""
    b = images.shape[0]
    moved = moved.view(b, 1, 1, 1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    warped = F.grid_sample(images, grid, mode=image_mode, padding_mode="zeros", align_corners=False)
    out = torch.where(moved, warped, images)
    if labels is None:
        return out, None
    as_float = labels.unsqueeze(1).to(grid.dtype)
    warped_labels = F.grid_sample(
        as_float, grid, mode="nearest", padding_mode="zeros", align_corners=False
    )
    new_labels = torch.where(moved, warped_labels, as_float).round().squeeze(1).to(labels.dtype)
    return out, new_labels


def augment_batch(
    images: torch.Tensor,
    labels: torch.Tensor | None,
    generator: torch.Generator,
    config: AugmentConfig,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Augment a batch as `config` says: images (B, C, H, W) float, labels (B, H, W) integer (or
    None). Returns tensors with the same dtype and device (the inputs themselves when
    `config.enabled` is False, or where no step of `config.transforms` can touch them).

    The draws come from `generator` (on the CPU or on the tensors' device): 6 uniforms per sample
    (blur?, rotate?, scale?, sigma, angle, factor), then 2 more (the column and row offsets) when
    `config.scale_offset` is "random", whatever the steps do, so a run's later draws never depend
    on them."""
    _check_inputs(images, labels)
    if not isinstance(config, AugmentConfig):
        raise ValueError(f"config: expected an AugmentConfig, got {type(config).__name__}")
    b, _, h, w = images.shape
    if not config.enabled or b == 0:
        return images, labels
    u = _draw(generator, 6, b, images.device)
    offsets_u = _draw(generator, 2, b, images.device) if config.scale_offset == "random" else None
    p, on = config.p, config.transforms
    (sigma_lo, sigma_hi), (scale_lo, scale_hi) = config.blur_sigma, config.scale
    out = images
    if "blur" in on:  # the steps switched on are a static choice: no read-back of the draws
        sigma = sigma_lo + (sigma_hi - sigma_lo) * u[3]
        blurred = blur_images(
            images,
            sigma,
            max_sigma=sigma_hi,
            kernel_size=config.blur_kernel_size,
            padding=config.blur_padding,
        )
        out = torch.where((u[0] < p).view(b, 1, 1, 1), blurred, images)
    if "rotate" in on:
        angle = torch.deg2rad((2 * u[4] - 1) * config.rotation_deg) * (u[1] < p)
    else:
        angle = torch.zeros_like(u[4])
    if "scale" in on:
        scale = torch.where(u[2] < p, scale_lo + (scale_hi - scale_lo) * u[5], 1.0)
    else:
        scale = torch.ones_like(u[5])
    if "rotate" not in on and "scale" not in on:
        return out, labels
    if offsets_u is None:
        theta = affine_matrices(angle, scale)
        moved = (angle != 0) | (scale != 1)  # exact identity otherwise
    else:
        zoom, shift, resized = _random_offset_warp(scale, offsets_u, h, w)
        theta = affine_matrices(angle, zoom[0], zoom[1], shift)
        moved = (angle != 0) | resized
    return _warp(out, labels, theta, moved, config.image_interpolation)
