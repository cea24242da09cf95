"""YOPO ("You Only Pool Once"): the DISCA feature network.

Ten valid 3x3x3 convolutions, each followed by ELU and batch normalisation, with a global max pool
after every block; the pooled vectors are concatenated, normalised and mapped linearly to a
1024-value feature. A replaceable linear head maps features to class scores.
"""

from __future__ import annotations

import torch
from torch import nn

from cryomine._deprecation import renamed_argument, renamed_property
from cryomine.errors import InputError

__all__ = ["MIN_BOX_SIZE", "YOPO", "YOPOHead", "yopo_channels"]

#: Ten valid 3x3x3 convolutions shrink the box by 20 voxels; at least one voxel must remain.
MIN_BOX_SIZE = 21
_BASE_CHANNELS = tuple(64 + 16 * i for i in range(10))  # 64, 80, ..., 208


def yopo_channels(width: float) -> tuple[int, ...]:
    """Channel counts of the ten convolution blocks for a ``width`` multiplier (1.0: 64 … 208)."""
    if not width > 0:
        raise InputError(
            f"width {width!r}: expected a positive channel multiplier, e.g. 1.0 or 0.25"
        )
    return tuple(max(1, round(c * width)) for c in _BASE_CHANNELS)


class _GaussianDropout(nn.Module):
    """Multiply the input by noise ~ N(1, rate / (1 - rate)) in training; identity in eval mode.

    Rate 0.5 gives N(1, 1). ``generator`` (set by the owner) makes the noise reproducible.
    """

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.std = (rate / (1.0 - rate)) ** 0.5
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.std == 0.0:
            return x
        noise = torch.randn(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        return x * (1.0 + self.std * noise)


class YOPO(nn.Module):
    """The YOPO feature trunk: subtomograms → 1024-value features.

    Parameters
    ----------
    width
        Multiplier on the channel counts 64, 80, …, 208 of the ten convolution blocks.
    feature_dim
        Length of the feature vector (1024 in DISCA).
    dropout_rate
        Rate of the multiplicative Gaussian dropout on the input (0.5: noise ~ N(1, 1)).
    init_generator
        CPU generator for the orthogonal initialisation (``None``: torch's global one).

    Notes
    -----
    Input ``(B, 1, Z, Y, X)`` or ``(B, Z, Y, X)``, float32, each subtomogram z-scored; cubic boxes
    of at least 21 voxels. Output ``(B, feature_dim)``. Convolutions are orthogonally
    initialised with zero bias. Global max pooling after every block makes the features
    translation invariant by construction.
    """

    def __init__(
        self,
        *,
        width: float = 1.0,
        feature_dim: int = 1024,
        dropout_rate: float = 0.5,
        init_generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        channels = yopo_channels(width)
        self.width = float(width)
        self.feature_dim = int(feature_dim)
        self.dropout = _GaussianDropout(dropout_rate)
        blocks = []
        in_channels = 1
        for out_channels in channels:
            conv = nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=0)
            nn.init.orthogonal_(conv.weight, generator=init_generator)
            nn.init.zeros_(conv.bias)
            blocks.append(
                nn.Sequential(conv, nn.ELU(), nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01))
            )
            in_channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.merge_norm = nn.BatchNorm1d(sum(channels), eps=1e-3, momentum=0.01)
        self.feature = nn.Linear(sum(channels), self.feature_dim)
        nn.init.orthogonal_(self.feature.weight, generator=init_generator)
        nn.init.zeros_(self.feature.bias)

    @property
    def generator(self) -> torch.Generator | None:
        """The generator the input dropout draws from (``None``: torch's global one)."""
        return self.dropout.generator

    @generator.setter
    def generator(self, value: torch.Generator | None) -> None:
        self.dropout.generator = value

    def forward(self, volumes: torch.Tensor) -> torch.Tensor:
        """Features ``(B, feature_dim)`` of subtomograms ``(B, [1,] Z, Y, X)``."""
        if volumes.dim() == 4:
            volumes = volumes.unsqueeze(1)
        if volumes.dim() != 5 or volumes.shape[1] != 1:
            raise InputError(
                f"YOPO input of shape {tuple(volumes.shape)}: expected (B, 1, Z, Y, X)"
            )
        if min(volumes.shape[2:]) < MIN_BOX_SIZE:
            raise InputError(
                f"box {tuple(volumes.shape[2:])}: YOPO needs subtomograms of at least "
                f"{MIN_BOX_SIZE} voxels per side"
            )
        x = self.dropout(volumes)
        pooled = []
        for block in self.blocks:
            x = block(x)
            pooled.append(torch.amax(x, dim=(2, 3, 4)))
        return self.feature(self.merge_norm(torch.cat(pooled, dim=1)))


class YOPOHead(nn.Module):
    """Linear(feature_dim → K) class head; ``forward`` gives logits ``(B, K)`` (no softmax).

    Orthogonally initialised (from ``init_generator``, a CPU generator, if given), zero bias.
    ``n_clusters`` (argument and attribute) is the deprecated former name of ``n_classes``.
    """

    def __init__(
        self,
        n_classes: int | None = None,
        *,
        feature_dim: int = 1024,
        init_generator: torch.Generator | None = None,
        n_clusters: int | None = None,
    ) -> None:
        super().__init__()
        n_classes = renamed_argument("n_clusters", "n_classes", n_clusters, n_classes)
        if n_classes is None:
            raise TypeError("YOPOHead needs n_classes")
        self.linear = nn.Linear(feature_dim, n_classes)
        nn.init.orthogonal_(self.linear.weight, generator=init_generator)
        nn.init.zeros_(self.linear.bias)
        self.n_classes = int(n_classes)

    n_clusters = renamed_property("n_clusters", "n_classes")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)
