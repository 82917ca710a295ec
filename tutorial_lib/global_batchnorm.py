"""BatchNorm over the global batch of every rank, on the CPU too (data-parallel training).

torch's `nn.SyncBatchNorm` refuses CPU tensors (its kernels exist on GPUs only), so on the CPU a
data-parallel network would normalise each rank's share by the share's own statistics: another
result than one process on the whole batch. `GlobalBatchNorm2d` computes the same statistics as
one process, with two sums over the ranks (autograd-aware `all_reduce`, so the gradient flows
through the statistics of every rank, as in one process):

    n = sum_r n_r            mean = sum_r sum(x_r) / n          var = sum_r sum((x_r - mean)^2) / n
    y = (x - mean) / sqrt(var + eps) * weight + bias
    running_mean <- (1 - m) running_mean + m mean,   running_var <- (1 - m) running_var + m var n / (n - 1)

In eval mode, or outside a process group, it is `nn.BatchNorm2d`. `global_batchnorm(module)`
swaps every BatchNorm2d of a network for one (same parameters and buffers, same state_dict keys).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GlobalBatchNorm2d", "global_batchnorm"]


class _SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) with its gradient: every rank's output depends on every rank's input, so
    the gradient of an input is the sum over the ranks of the output's gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        torch.distributed.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        torch.distributed.all_reduce(total)
        return total


def _sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    return _SumOverRanks.apply(tensor)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """`nn.BatchNorm2d` whose training statistics are those of the global batch (module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        synced = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not (self.training and synced and self.track_running_stats):
            return super().forward(x)
        dims = (0, 2, 3)
        count = torch.full((1,), float(x.numel() // x.shape[1]), dtype=x.dtype, device=x.device)
        sums = _sum_over_ranks(torch.cat([x.sum(dims), count]))
        n = sums[-1]
        mean = sums[:-1] / n
        centred = x - mean.view(1, -1, 1, 1)
        var = _sum_over_ranks(centred.square().sum(dims)) / n
        y = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = self.momentum  # None: the cumulative mean, as BatchNorm2d
            if m is None:
                m = 1.0 / self.num_batches_tracked.to(self.running_mean.dtype)
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), m)
            unbiased = var * n / (n - 1).clamp_min(1)
            self.running_var.lerp_(unbiased.to(self.running_var.dtype), m)
        return y


def global_batchnorm(module: nn.Module) -> nn.Module:
    """`module` with each `nn.BatchNorm2d` replaced by a `GlobalBatchNorm2d` sharing its
    parameters and buffers (in place for children; the new module if `module` is one)."""
    if type(module) is nn.BatchNorm2d:
        new = GlobalBatchNorm2d(
            module.num_features, module.eps, module.momentum, module.affine, True
        )
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        new.running_mean, new.running_var = module.running_mean, module.running_var
        new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, global_batchnorm(child))
    return module
