"""The picker's network: a small fully convolutional 3-D CNN to a unit-norm embedding.

One ``window³`` input window (``window`` a multiple of 4, at least 20 voxels) gives one
``embedding_dim`` vector; because every layer is a valid (unpadded) convolution or a 2× max-pool,
the same network applied to a larger volume of edge ``window + 4·k`` gives ``(k + 1)`` embeddings
per axis at a stride of :data:`NATIVE_STRIDE` = 4 voxels: output ``j`` is exactly the embedding of
the window that starts at input voxel ``4·j``. That is what makes dense embedding of a whole
tomogram cheap (:mod:`cryomine.picker._embedding`).

Layers (``c = channels``): conv3 1→c₀, conv3 c₀→c₀, pool2, conv3 c₀→c₁, conv3 c₁→c₁, pool2,
conv ``k_f`` c₁→c₂ with ``k_f = (window - 12) / 4`` (covers what is left of the window), then
two 1×1×1 convolutions (c₂→c₂→D) and an L2 normalisation over the D channels. Batch norm after
each convolution of the trunk; in evaluation mode it is a per-channel affine map, so windowed
and dense embeddings agree exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cryomine.errors import InputError

__all__ = [
    "CONFIG_NAME",
    "NATIVE_STRIDE",
    "WEIGHTS_NAME",
    "PickerConfig",
    "PickerNet",
    "load_picker",
    "save_picker",
    "shipped_model_directory",
]

#: Stride (voxels) between the dense outputs of the network: two 2× poolings.
NATIVE_STRIDE = 4
#: File names of a saved model: torch state dict and JSON config.
WEIGHTS_NAME = "model.pt"
CONFIG_NAME = "config.json"


@dataclass(frozen=True)
class PickerConfig:
    """Architecture of a :class:`PickerNet`.

    Attributes
    ----------
    window
        Edge of the cubic input window, voxels (a multiple of 4, at least 20).
    voxel_size_a
        Voxel size the model was trained at, Å (tomograms should be binned to it).
    embedding_dim
        Length of the unit-norm embedding.
    channels
        Channels of the three trunk stages ``(c₀, c₁, c₂)``.
    """

    window: int = 24
    voxel_size_a: float = 10.0
    embedding_dim: int = 32
    channels: tuple[int, int, int] = (16, 32, 128)

    def __post_init__(self) -> None:
        if self.window < 20 or self.window % NATIVE_STRIDE:
            raise InputError(f"window {self.window}: expected a multiple of 4, at least 20 voxels")
        if self.embedding_dim < 2:
            raise InputError(f"embedding dimension {self.embedding_dim}: expected at least 2")
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise InputError(f"channels {self.channels}: expected three positive numbers")
        if not self.voxel_size_a > 0:
            raise InputError(f"voxel size {self.voxel_size_a} Å: expected a positive number")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PickerConfig:
        return cls(
            window=int(values["window"]),
            voxel_size_a=float(values["voxel_size_a"]),
            embedding_dim=int(values["embedding_dim"]),
            channels=tuple(int(c) for c in values["channels"]),  # type: ignore[arg-type]
        )


def _conv(c_in: int, c_out: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv3d(c_in, c_out, kernel), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True)]


class PickerNet(nn.Module):
    """Fully convolutional embedding network (see the module docstring).

    ``forward(x)``: ``x`` float32 ``(B, 1, Z, Y, X)`` with every edge ``window + 4·k``;
    returns ``(B, D, k_z + 1, k_y + 1, k_x + 1)``, unit norm along D.
    :meth:`embed_windows` maps ``(B, window, window, window)`` windows to ``(B, D)``.
    """

    def __init__(self, config: PickerConfig) -> None:
        super().__init__()
        self.config = config
        c0, c1, c2 = config.channels
        final_kernel = (config.window - 12) // NATIVE_STRIDE
        self.trunk = nn.Sequential(
            *_conv(1, c0, 3),
            *_conv(c0, c0, 3),
            nn.MaxPool3d(2),
            *_conv(c0, c1, 3),
            *_conv(c1, c1, 3),
            nn.MaxPool3d(2),
            *_conv(c1, c2, final_kernel),
        )
        self.head = nn.Sequential(
            nn.Conv3d(c2, c2, 1), nn.ReLU(inplace=True), nn.Conv3d(c2, config.embedding_dim, 1)
        )

    def forward(self, volumes: torch.Tensor) -> torch.Tensor:
        out = self.head(self.trunk(volumes))
        return nn.functional.normalize(out, dim=1)

    def embed_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, D)`` of windows ``(B, window, window, window)`` (z, y, x)."""
        w = self.config.window
        if windows.ndim != 4 or tuple(windows.shape[1:]) != (w, w, w):
            raise InputError(
                f"windows of shape {tuple(windows.shape)}: expected (B, {w}, {w}, {w})"
            )
        return self(windows[:, None]).flatten(1)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def shipped_model_directory() -> Path:
    """Folder of the model that ships with cryomine (``cryomine/data/picker``)."""
    from importlib.resources import files

    return Path(str(files("cryomine.data") / "picker"))


def save_picker(model: PickerNet, directory: Path, *, extra: dict[str, Any] | None = None) -> None:
    """Write ``model.pt`` (state dict) and ``config.json`` (architecture + ``extra``), atomically."""
    from cryomine.io._atomic import atomic_path, atomic_write_text

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        torch.save(state, tmp)
    payload = {"architecture": model.config.to_dict(), **(extra or {})}
    atomic_write_text(directory / CONFIG_NAME, json.dumps(payload, indent=2) + "\n")


def load_picker(directory: Path | None = None, *, device: torch.device | str = "cpu") -> PickerNet:
    """Rebuild a model from ``directory`` (config + weights; default: the shipped model).

    Returned in evaluation mode on ``device``. Raises :class:`InputError` naming the folder when
    a file is missing or does not fit the config.
    """
    directory = shipped_model_directory() if directory is None else Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise InputError(f"{path}: picker model file not found (expected {path.name} there)")
    try:
        payload = json.loads(config_path.read_text())
        config = PickerConfig.from_dict(payload["architecture"])
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"{config_path}: not a picker config ({error})") from None
    model = PickerNet(config)
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise InputError(
            f"{weights_path}: weights do not fit {config_path.name}: {first}"
        ) from None
    return model.to(device).eval()
