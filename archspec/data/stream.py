"""The streaming path: a torch ``Dataset`` that decodes each image when it is asked for.

This is the only module of :mod:`archspec.data` that imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from archspec.data.catalog import Reader


class ImageStream(Dataset[tuple[torch.Tensor, int]]):
    """Item ``i`` is image ``indices[i]`` as a C×H×W tensor (``uint8`` or float32) and its label.

    It holds only its reader (paths and headers, or arrays), so it pickles into DataLoader workers.
    """

    def __init__(self, reader: Reader, indices: np.ndarray, labels: np.ndarray, size: tuple[int, int], resize: str):
        self.reader = reader
        self.indices = indices
        self.labels = labels
        self.size = size
        self.resize = resize

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int]:
        index = int(self.indices[item])
        return torch.from_numpy(self.reader.read(index, self.size, self.resize)), int(self.labels[index])
