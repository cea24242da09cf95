"""The M-step of DISCA and feature extraction: YOPO inference and training loops."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch

from cryomine.sorting._source import SubtomogramSource
from cryomine.sorting._yopo import YOPO, YOPOHead

__all__ = [
    "categorical_hinge",
    "extract_features",
    "recalibrate_batchnorm",
    "smoothed_targets",
    "train_epoch",
    "train_head",
]

ProgressCallback = Callable[[int, int], None]


def categorical_hinge(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean categorical hinge loss on the softmax of ``logits``.

    With ``p = softmax(logits)`` and soft ``targets`` ``y`` (rows summing to 1), both ``(B, K)``:
    ``pos = Σ y·p``, ``neg = max((1 - y)·p)``, loss ``= max(0, neg - pos + 1)`` — for one-hot
    targets ``max(0, 1 + max_{j≠true} p_j - p_true)`` (Keras' ``categorical_hinge``).
    """
    probabilities = torch.softmax(logits.float(), dim=1)
    positive = (targets * probabilities).sum(dim=1)
    negative = ((1.0 - targets) * probabilities).amax(dim=1)
    return torch.clamp(negative - positive + 1.0, min=0.0).mean()


def smoothed_targets(labels: np.ndarray, n_classes: int, alpha: float) -> torch.Tensor:
    """``(N, K)`` float32 targets ``(1 - alpha)·onehot(labels) + alpha / K``."""
    onehot = np.eye(n_classes, dtype=np.float32)[np.asarray(labels)]
    return torch.from_numpy((1.0 - alpha) * onehot + alpha / n_classes)


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[object]:
    """bf16 (or fp16) autocast on CUDA when enabled; never on CPU, where it is 11-95x slower."""
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _to_device(volumes: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """``(B, S, S, S)`` volumes → ``(B, 1, S, S, S)`` float32 tensor (channels-last-3d on CPU)."""
    tensor = torch.as_tensor(volumes, dtype=torch.float32).to(device).unsqueeze(1)
    if device.type == "cpu":
        tensor = tensor.contiguous(memory_format=torch.channels_last_3d)
    return tensor


def extract_features(
    trunk: YOPO,
    source: SubtomogramSource,
    *,
    batch_size: int,
    device: torch.device,
    mixed_precision: bool = True,
    progress: ProgressCallback | None = None,
    n_rotations: int = 1,
) -> np.ndarray:
    """Features ``(N, feature_dim)`` float32 of all subtomograms, trunk in eval mode.

    With ``n_rotations > 1`` each subtomogram's features are averaged over the first
    ``n_rotations`` exact 90° rotations of its box (identity first; see ``_invariance.py``).
    """
    from cryomine.sorting._invariance import cube_rotations, rotate_cube

    rotations = cube_rotations(n_rotations)
    trunk.eval()
    features = np.empty((source.n_particles, trunk.feature_dim), dtype=np.float32)
    with torch.inference_mode(), _autocast(device, mixed_precision):
        for indices, volumes in source.batches(batch_size):
            batch = torch.from_numpy(volumes)
            total = torch.zeros((len(indices), trunk.feature_dim), dtype=torch.float32)
            for rotation in rotations:
                rotated = rotate_cube(batch, rotation).contiguous()
                total += trunk(_to_device(rotated, device)).float().cpu()
            features[indices] = (total / len(rotations)).numpy()
            if progress is not None:
                progress(int(indices[-1]) + 1, source.n_particles)
    return features


def recalibrate_batchnorm(
    trunk: YOPO,
    source: SubtomogramSource,
    *,
    batch_size: int,
    device: torch.device,
    mixed_precision: bool = True,
) -> None:
    """Re-estimate every BatchNorm's running statistics on ``source`` as features see it.

    Training updates the running means and variances from augmented batches (input dropout,
    rotated copies) with momentum 0.01, so features extracted in eval mode drift with the
    number of steps taken, not with what the weights learned. Here the statistics are reset
    and re-accumulated (cumulative average) over one pass of the unaugmented subtomograms with
    dropout off; weights are untouched. Batches of one sample are skipped (batch norm needs two).
    """
    norms = [m for m in trunk.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average over the pass
    trunk.train()
    trunk.dropout.eval()
    try:
        with torch.no_grad(), _autocast(device, mixed_precision):
            for indices, volumes in source.batches(batch_size):
                if len(indices) >= 2:
                    trunk(_to_device(volumes, device))
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        trunk.eval()


def _batches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Shuffled batches of ``range(n)``; a trailing batch of one joins the previous batch."""
    order = rng.permutation(n)
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < 2:
        starts.pop()
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else n
        yield order[start:stop]


def train_head(
    head: YOPOHead,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    alpha: float,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device,
) -> float:
    """Train a new head alone on frozen ``(N, D)`` features; return the last epoch's mean loss."""
    head.train()
    optimizer = torch.optim.NAdam(head.parameters(), lr=learning_rate, betas=(0.9, 0.999), eps=1e-8)
    inputs = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device)
    targets = smoothed_targets(labels, head.n_classes, alpha).to(device)
    mean_loss = float("nan")
    for _ in range(epochs):
        losses = []
        for batch in _batches(len(labels), batch_size, rng):
            index = torch.from_numpy(batch).to(device)
            loss = categorical_hinge(head(inputs[index]), targets[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        mean_loss = float(np.mean(losses))
    return mean_loss


def train_epoch(
    trunk: YOPO,
    head: YOPOHead,
    optimizer: torch.optim.Optimizer,
    source: SubtomogramSource,
    labels: np.ndarray,
    *,
    alpha: float,
    batch_size: int,
    rng: np.random.Generator,
    generator: torch.Generator,
    device: torch.device,
    mixed_precision: bool = True,
    progress: ProgressCallback | None = None,
) -> tuple[float, int]:
    """One epoch over the N originals plus one uniformly rotated copy of each, shuffled.

    Rotated copies get N(0, 1) noise in the corners the rotation brings in from outside the box.
    ``rng`` draws the order and the rotations, ``generator`` (on ``device``) the input dropout
    and the corner noise. Returns the mean loss and the number of optimizer steps taken.
    """
    from cryomine.geometry import random_rotations, transform_volumes

    trunk.train()
    head.train()
    trunk.generator = generator
    n = source.n_particles
    targets = smoothed_targets(labels, head.n_classes, alpha)
    losses = []
    done = 0
    for batch in _batches(2 * n, batch_size, rng):
        indices = batch % n
        rotated = batch >= n
        volumes = torch.from_numpy(source.read(indices)).to(device)
        if rotated.any():
            rotations = random_rotations(int(rotated.sum()), rng=rng)
            mask = torch.from_numpy(rotated).to(device)
            volumes[mask], _ = transform_volumes(
                volumes[mask], rotations.as_matrix(), fill="noise", generator=generator
            )
        with _autocast(device, mixed_precision):
            logits = head(trunk(_to_device(volumes, device)))
        loss = categorical_hinge(logits, targets[indices].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        done += len(batch)
        if progress is not None:
            progress(done, 2 * n)
    trunk.generator = None
    return float(np.mean(losses)), len(losses)
