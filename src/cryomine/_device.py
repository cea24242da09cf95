"""Choosing the torch device: CPU by default, CUDA when asked for and present."""

from __future__ import annotations

import torch

from cryomine.errors import InputError

__all__ = ["resolve_device"]


def resolve_device(name: str = "auto") -> torch.device:
    """Return the torch device for ``name``: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:i]"``."""
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r}: no CUDA device is available here; use --device cpu")
        return torch.device(name)
    raise InputError(f"device {name!r}: expected 'auto', 'cpu' or 'cuda[:index]'")
