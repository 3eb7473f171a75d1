import torch
import torch.nn.functional as F


def smooth_field(channels: int, size: int, width: float = 3.0, seed: int = 0) -> torch.Tensor:
    """A band-limited random image ``[1, channels, size, size]`` (float64) that vanishes outside a disk, so that
    rotating it by interpolation loses almost nothing."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(channels, 1, size, size, generator=generator, dtype=torch.float64)
    r = torch.arange(-12, 13, dtype=torch.float64)
    kernel = torch.exp(-(r**2) / (2 * width**2))
    kernel = kernel / kernel.sum()
    x = F.conv2d(x, kernel.view(1, 1, 1, -1), padding=(0, 12))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1), padding=(12, 0))
    return (x.reshape(1, channels, size, size) * disk(size, size / 2 - 1)).contiguous()


def disk(size: int, radius: float) -> torch.Tensor:
    axis = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    return ((axis[:, None] ** 2 + axis[None, :] ** 2).sqrt() <= radius).to(torch.float64)
