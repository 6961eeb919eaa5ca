"""Training-time augmentation for ``archspec fit --augment``: random-resized crop and horizontal flip.

Both are drawn per image from a seeded generator and applied to the whole batch in one
``grid_sample``, on the device the batch is on. The crop follows the usual recipe (torchvision's
``RandomResizedCrop``): an area of 8–100% of the image and an aspect ratio between 3:4 and 4:3,
drawn log-uniformly; a box wider or taller than the image is clamped to it, where torchvision would
draw again. The crop is scaled back to the input size, so the model sees the same shape.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SCALE = (0.08, 1.0)
"""The share of the image's area a crop covers."""
RATIO = (3 / 4, 4 / 3)
"""The crop's aspect ratio (width / height), drawn log-uniformly."""


def crop_and_flip(batch: torch.Tensor, generator: torch.Generator, flip: bool = True) -> torch.Tensor:
    """A random-resized crop of every image of ``batch`` (N, C, H, W), mirrored left-right with chance ½."""
    count, _, height, width = batch.shape
    draws = torch.rand(count, 5, generator=generator, dtype=torch.float64)
    area = SCALE[0] + (SCALE[1] - SCALE[0]) * draws[:, 0]
    log_low, log_high = math.log(RATIO[0]), math.log(RATIO[1])
    aspect = torch.exp(log_low + (log_high - log_low) * draws[:, 1])
    # The crop's width and height as fractions of the image's (area × aspect, in pixels, over the width).
    frac_w = torch.sqrt(area * aspect * height / width).clamp(max=1.0)
    frac_h = torch.sqrt(area / aspect * width / height).clamp(max=1.0)
    # Centres in grid_sample's coordinates ([-1, 1] across the image), so that the crop stays inside.
    centre_x = (1 - frac_w) * (2 * draws[:, 2] - 1)
    centre_y = (1 - frac_h) * (2 * draws[:, 3] - 1)
    mirror = torch.where(draws[:, 4] < 0.5, -1.0, 1.0) if flip else torch.ones(count, dtype=torch.float64)
    theta = torch.zeros(count, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = frac_w * mirror
    theta[:, 0, 2] = centre_x
    theta[:, 1, 1] = frac_h
    theta[:, 1, 2] = centre_y
    theta = theta.to(device=batch.device, dtype=batch.dtype)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
