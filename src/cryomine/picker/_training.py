"""Training the picker: triplet loss with semi-hard mining on simulated windows; resumable.

Per epoch ``e``: a fresh :class:`~cryomine.picker._data.WindowPool` is simulated from seed
``[seed, e]`` (every training structure once, in new tomograms and conditions), then
``steps_per_epoch`` P×K batches (``n_classes`` classes × ``n_per_class`` windows) are drawn from
it and the network takes one Adam step per batch on :func:`~cryomine.picker._mining.triplet_loss`.
The learning rate follows a cosine decay over the planned epochs. Validation uses one fixed pool
(seed ``[seed, 1_000_000]``): the mean triplet loss over fixed batches and the leave-one-out
nearest-neighbour class accuracy of its windows (cosine distance).

After every epoch a checkpoint (weights, optimizer, epoch, history) is written atomically to
``directory/checkpoint.pt``; a run started again on the same directory continues from it, and
because every random draw is seeded by ``[seed, epoch]``, the resumed run is the run that would
have happened without interruption. ``max_wall_s`` stops training after the first epoch that
ends past that time (the model is still saved).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryomine.errors import InputError
from cryomine.picker._data import TrainingConditions, WindowPool, simulate_window_pool
from cryomine.picker._mining import cosine_distances, triplet_loss
from cryomine.picker._network import PickerConfig, PickerNet, save_picker

__all__ = ["CHECKPOINT_NAME", "TrainingOptions", "TrainingResult", "train_picker"]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
_VALIDATION_EPOCH = 1_000_000


@dataclass(frozen=True)
class TrainingOptions:
    """Optimisation settings of :func:`train_picker`.

    Attributes
    ----------
    epochs, steps_per_epoch
        Planned epochs and optimizer steps per epoch.
    n_classes, n_per_class
        Classes per batch and windows per class (batch = their product).
    learning_rate
        Initial Adam learning rate (cosine decay to 0 over ``epochs``).
    margin
        Triplet margin in cosine distance.
    validation_batches
        Fixed batches of the validation pool the validation loss averages over.
    max_wall_s
        Stop after the epoch that ends past this many seconds of this run (``None``: no limit).
    """

    epochs: int = 30
    steps_per_epoch: int = 30
    n_classes: int = 16
    n_per_class: int = 4
    learning_rate: float = 1e-3
    margin: float = 0.5
    validation_batches: int = 4
    max_wall_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "steps_per_epoch", "n_classes", "n_per_class"):
            value = getattr(self, name)
            if value < (2 if name in ("n_classes", "n_per_class") else 1):
                raise InputError(f"{name.replace('_', ' ')} {value}: too small")


@dataclass
class TrainingResult:
    """What :func:`train_picker` produced: the model and one history row per epoch."""

    model: PickerNet
    history: list[dict[str, float]]
    class_names: list[str]
    resumed_from_epoch: int


def _nearest_neighbour_accuracy(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    distances = cosine_distances(embeddings)
    distances.fill_diagonal_(float("inf"))
    return float((labels[distances.argmin(dim=1)] == labels).float().mean())


def _validate(
    model: PickerNet,
    pool: WindowPool,
    batches: list[np.ndarray],
    *,
    margin: float,
    device: torch.device,
) -> dict[str, float]:
    window = model.config.window
    model.eval()
    with torch.inference_mode():
        losses = []
        for rows in batches:
            x = torch.from_numpy(pool.windows(rows, window, rng=None, shift_px=0)).to(device)
            y = torch.from_numpy(pool.labels[rows]).to(device)
            losses.append(float(triplet_loss(model.embed_windows(x), y, margin=margin)[0]))
        everything = np.arange(len(pool))
        parts = [
            model.embed_windows(
                torch.from_numpy(
                    pool.windows(everything[i : i + 64], window, rng=None, shift_px=0)
                ).to(device)
            )
            for i in range(0, len(pool), 64)
        ]
        accuracy = _nearest_neighbour_accuracy(
            torch.cat(parts), torch.from_numpy(pool.labels).to(device)
        )
    return {"validation_loss": float(np.mean(losses)), "validation_nn_accuracy": accuracy}


def _save_checkpoint(
    path: Path, model: PickerNet, optimizer: Any, epoch: int, history: list
) -> None:
    from cryomine.io._atomic import atomic_path

    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "history": history,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train_picker(
    densities: Mapping[str, np.ndarray],
    directory: Path,
    *,
    config: PickerConfig | None = None,
    options: TrainingOptions | None = None,
    conditions: TrainingConditions | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    extra_config: dict[str, Any] | None = None,
) -> TrainingResult:
    """Train a picker on ``densities`` and save it (``model.pt`` + ``config.json``) in ``directory``.

    Parameters
    ----------
    densities
        name → clean density (cubic ``(n, n, n)``, protein positive, at the config's voxel size);
        each is one class, followed by membrane, gold and background.
    directory
        Output folder; an existing ``checkpoint.pt`` there is resumed from.
    config, options, conditions
        Architecture, optimisation and simulation settings (defaults when ``None``).
    seed
        Seed of the initial weights and every draw.
    device
        Torch device of the network and the simulator.
    progress
        ``progress(steps_done, steps_planned)`` after each step.
    extra_config
        More entries for ``config.json`` (e.g. the training command).

    Returns
    -------
    TrainingResult
    """
    config = config or PickerConfig()
    options = options or TrainingOptions()
    conditions = conditions or TrainingConditions(voxel_size_a=config.voxel_size_a)
    if abs(conditions.voxel_size_a - config.voxel_size_a) > 1e-6:
        raise InputError(
            f"voxel size {conditions.voxel_size_a} Å of the training tomograms differs from the "
            f"model's {config.voxel_size_a} Å"
        )
    if len(densities) < 1:
        raise InputError("structures: give at least one structure to train on")
    device = torch.device(device)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)  # weights are the only torch randomness (no dropout)
    model = PickerNet(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.learning_rate)
    history: list[dict[str, float]] = []
    first_epoch = 0
    checkpoint_path = directory / CHECKPOINT_NAME
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as error:
            raise InputError(
                f"{checkpoint_path}: checkpoint of another architecture ({str(error).splitlines()[0]}); "
                "use a new output folder"
            ) from None
        optimizer.load_state_dict(state["optimizer"])
        first_epoch = int(state["epoch"]) + 1
        history = list(state["history"])
        logger.info("resuming from %s at epoch %d", checkpoint_path, first_epoch)
    names: Sequence[str] = list(densities)
    validation = simulate_window_pool(
        densities, names, conditions=conditions, seed=[seed, _VALIDATION_EPOCH], device=str(device)
    )
    val_rng = np.random.default_rng([seed, _VALIDATION_EPOCH])
    val_batches = [
        validation.draw_batch(val_rng, n_classes=options.n_classes, n_per_class=options.n_per_class)
        for _ in range(options.validation_batches)
    ]
    if not history:
        history.append(
            {
                "epoch": -1,
                **_validate(model, validation, val_batches, margin=options.margin, device=device),
            }
        )
    total_steps = options.epochs * options.steps_per_epoch
    start = time.perf_counter()
    for epoch in range(first_epoch, options.epochs):
        epoch_start = time.perf_counter()
        pool = simulate_window_pool(
            densities, names, conditions=conditions, seed=[seed, epoch], device=str(device)
        )
        rng = np.random.default_rng([seed, epoch, 1])
        lr = 0.5 * options.learning_rate * (1.0 + math.cos(math.pi * epoch / options.epochs))
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        losses, active = [], []
        for step in range(options.steps_per_epoch):
            rows = pool.draw_batch(
                rng, n_classes=options.n_classes, n_per_class=options.n_per_class
            )
            x = torch.from_numpy(
                pool.windows(rows, config.window, rng=rng, shift_px=conditions.shift_px)
            ).to(device)
            y = torch.from_numpy(pool.labels[rows]).to(device)
            loss, stats = triplet_loss(model.embed_windows(x), y, margin=options.margin)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            active.append(stats["fraction_active"])
            if progress is not None:
                progress(epoch * options.steps_per_epoch + step + 1, total_steps)
        row = {
            "epoch": epoch,
            "learning_rate": lr,
            "train_loss": float(np.mean(losses)),
            "fraction_active": float(np.mean(active)),
            **_validate(model, validation, val_batches, margin=options.margin, device=device),
            "epoch_s": time.perf_counter() - epoch_start,
        }
        history.append(row)
        logger.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in row.items()})
        _save_checkpoint(checkpoint_path, model, optimizer, epoch, history)
        if options.max_wall_s is not None and time.perf_counter() - start > options.max_wall_s:
            logger.warning(
                "stopping after epoch %d: wall-time limit %.0f s", epoch, options.max_wall_s
            )
            break
    model.eval()
    save_picker(
        model,
        directory,
        extra={
            "class_names": validation.class_names,
            "training": {
                "options": asdict(options),
                "conditions": conditions.to_dict(),
                "seed": seed,
                "epochs_done": history[-1]["epoch"] + 1,
            },
            **(extra_config or {}),
        },
    )
    return TrainingResult(model, history, validation.class_names, first_epoch)
