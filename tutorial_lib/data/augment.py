"""The paper's online augmentation, batched on the tensors' device and seeded.

Each of three transforms is applied to each sample independently with probability p:
- Gaussian blur of the image only, sigma uniform in [0.5, 2] pixels;
- rotation by an angle uniform in [-30, 30] degrees;
- scaling by a factor uniform in [0.8, 1.2].
Rotation and scaling share one `affine_grid` / `grid_sample` call for the whole batch (image
bilinear, labels nearest, zero padding = background); the blur is one grouped convolution
with a kernel per sample. Samples that a transform skips are returned bit-identical.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


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


def _draw(generator: torch.Generator, n: int, device: torch.device) -> torch.Tensor:
    """(6, n) uniforms from `generator` (on its own device), moved to `device`."""
    return torch.rand(6, n, generator=generator, device=generator.device).to(device)


def blur_images(
    images: torch.Tensor, sigmas: torch.Tensor, max_sigma: float | None = None
) -> torch.Tensor:
    """Blur sample b of (B, C, H, W) with a Gaussian of std sigmas[b] pixels (edge replicated).

    One separable grouped convolution; the kernel radius is ceil(3 * max_sigma). Give
    `max_sigma` (an upper bound of `sigmas`) to avoid reading `sigmas` back from the GPU.
    """
    b, c, h, w = images.shape
    if max_sigma is None:
        max_sigma = float(sigmas.max()) if b else 0.0
    radius = max(1, math.ceil(3 * max_sigma))
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    s = sigmas.to(images.dtype).clamp_min(1e-3).repeat_interleave(c).view(-1, 1)
    kernel = torch.exp(-0.5 * (offsets.view(1, -1) / s) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    x = images.reshape(1, b * c, h, w)
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(b * c, 1, 1, -1), groups=b * c)
    x = F.conv2d(x, kernel.view(b * c, 1, -1, 1), groups=b * c)
    return x.view(b, c, h, w)


def affine_matrices(angles_rad: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) `affine_grid` matrices that rotate by `angles` and zoom by `scales` about the
    image centre (scale > 1 enlarges the content)."""
    cos, sin = torch.cos(angles_rad) / scales, torch.sin(angles_rad) / scales
    zero = torch.zeros_like(cos)
    return torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], 1)


def augment_batch(
    images: torch.Tensor,
    labels: torch.Tensor | None,
    generator: torch.Generator,
    p: float = 0.5,
    *,
    rotation_deg: float = 30.0,
    scale_range: tuple[float, float] = (0.8, 1.2),
    blur_sigma: tuple[float, float] = (0.5, 2.0),
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Augment a batch: images (B, C, H, W) float, labels (B, H, W) integer (or None).

    Returns new tensors with the same dtype and device. The random draws come from
    `generator` (which may live on the CPU or on the tensors' device), so a seeded generator
    repeats the same augmentation.
    """
    _check_inputs(images, labels)
    if not 0 <= p <= 1:
        raise ValueError(f"p: expected a probability in [0, 1], got {p}")
    if scale_range[0] <= 0 or scale_range[0] > scale_range[1]:
        raise ValueError(
            f"scale_range: expected 0 < scale_range[0] <= scale_range[1], got {scale_range}"
        )
    if blur_sigma[0] < 0 or blur_sigma[0] > blur_sigma[1]:
        raise ValueError(
            f"blur_sigma: expected 0 <= blur_sigma[0] <= blur_sigma[1], got {blur_sigma}"
        )
    b = images.shape[0]
    if b == 0:
        return images, labels
    u = _draw(generator, b, images.device)
    do_blur, do_rotate, do_scale = u[0] < p, u[1] < p, u[2] < p
    do_blur = do_blur & (blur_sigma[1] > 0)
    sigma = blur_sigma[0] + (blur_sigma[1] - blur_sigma[0]) * u[3]
    angle = torch.deg2rad((2 * u[4] - 1) * rotation_deg) * do_rotate
    scale = torch.where(do_scale, scale_range[0] + (scale_range[1] - scale_range[0]) * u[5], 1.0)

    blurred = blur_images(images, sigma, max_sigma=blur_sigma[1])
    out = torch.where(do_blur.view(b, 1, 1, 1), blurred, images)
    warp = ((angle != 0) | (scale != 1)).view(b, 1, 1, 1)  # exact identity otherwise
    theta = affine_matrices(angle, scale).to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    warped = F.grid_sample(out, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = torch.where(warp, warped, out)
    if labels is None:
        return out, None
    as_float = labels.unsqueeze(1).to(grid.dtype)
    warped_labels = F.grid_sample(
        as_float, grid, mode="nearest", padding_mode="zeros", align_corners=False
    )
    new_labels = torch.where(warp, warped_labels, as_float).round().squeeze(1).to(labels.dtype)
    return out, new_labels
