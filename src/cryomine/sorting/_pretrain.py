"""Pretraining the YOPO trunk by supervised contrastive learning on simulated structures.

DISCA starts from an untrained network, so its first features — and the number of classes BIC
reads from them — are those of random convolutions. The paper suggests fine-tuning a pretrained
model instead. This module trains the trunk so that subtomograms of one structure (different
poses, shifts, noise, wedge, CTF and sampling) map close together and those of different
structures apart: the supervised contrastive loss of Khosla et al. (NeurIPS 2020) on the
L2-normalised 1024-value features, over batches of ``structures_per_batch`` structures ×
``views`` subtomograms each, simulated on the fly by :func:`cryomine.simulate.simulate_subtomograms`.
The structures used must not include the ones a sort is evaluated on (docs/disca.md).

The input transform is DISCA's default one (half-Nyquist low-pass, then z-score), so a
pretrained trunk sees what DISCA will feed it.

**Variants** (``variants`` > 0): each structure also gets copies with a ball of its density
removed (``variant_removed_mass``, a fraction of its mass, around a density-weighted random
point; the same ball in Å at every voxel size). A variant is a class of its own, and a batch
then holds half its structures with one of their variants beside them, so that the loss sees
two structures that differ by one subunit-sized part (hard negatives): the differences that
separate similar complexes, which distinct structures alone do not teach.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryomine._device import resolve_device
from cryomine.errors import InputError
from cryomine.sorting._persist import read_bundle, write_bundle
from cryomine.sorting._source import SubtomogramSource, as_source, lowpass_fraction
from cryomine.sorting._training import extract_features, recalibrate_batchnorm
from cryomine.sorting._yopo import YOPO

__all__ = [
    "BUILTIN",
    "PRETRAINED_FORMAT",
    "PretrainSettings",
    "load_pretrained_trunk",
    "pretrain_trunk",
    "pretrained_features",
    "pretrained_path",
    "shipped_trunks",
    "supervised_contrastive_loss",
]

logger = logging.getLogger(__name__)

PRETRAINED_FORMAT = "cryomine-yopo-pretrained-1"
#: Name of the trunks shipped in ``cryomine/data/yopo/w<width>/``.
BUILTIN = "builtin"
#: Simulated batches per voxel size on which the final BatchNorm statistics are estimated.
_CALIBRATION_BATCHES = 4


@dataclass(frozen=True)
class PretrainSettings:
    """What :func:`pretrain_trunk` simulates and how it trains.

    Units: voxel sizes Å, tilt half-range degrees, defocus µm (underfocus positive). SNR is the
    projection noise model's (``cryomine.simulate``), drawn log-uniformly per batch. A structure
    is used at a voxel size when its natural box (envelope plus margin, voxels) lies in
    ``structure_box_range``; up to 32 crops only the margin of a 24³ box, as the validation
    sets at 16 Å do for the 80S ribosome.
    """

    width: float = 0.25
    box_size: int = 24
    steps: int = 2000
    structures_per_batch: int = 8
    views: int = 4
    voxel_sizes_a: tuple[float, ...] = (10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 24.0)
    snr_range: tuple[float, float] = (0.02, 0.3)
    tilt_half_range_deg: tuple[float, float] = (45.0, 70.0)
    defocus_um: tuple[float, float] = (2.0, 6.0)
    structure_box_range: tuple[int, int] = (8, 32)
    temperature: float = 0.1
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    checkpoint_every: int = 100
    variants: int = 0
    variant_removed_mass: tuple[float, float] = (0.1, 0.25)

    def json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def supervised_contrastive_loss(
    features: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean supervised contrastive loss (Khosla et al. 2020, "L_out") of ``(B, D)`` features.

    For each anchor i with positives P(i) (same label, not i):
    ``−mean_{p∈P(i)} log(exp(z_i·z_p/τ) / Σ_{a≠i} exp(z_i·z_a/τ))``, z the L2-normalised
    features. Anchors without a positive are left out.
    """
    z = torch.nn.functional.normalize(features.float(), dim=1)
    logits = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positive.sum(dim=1)
    has_positive = counts > 0
    if not bool(has_positive.any()):
        raise InputError("contrastive batch without any positive pair: use views >= 2")
    summed = torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    return -(summed[has_positive] / counts[has_positive]).mean()


@dataclass
class _Catalogue:
    """Clean densities ``(box, box, box)`` per voxel size, of the structures that fit the box."""

    names: list[str]
    densities: dict[float, dict[str, np.ndarray]] = field(default_factory=dict)
    #: variant name -> the structure it was made from (empty without variants)
    variant_of: dict[str, str] = field(default_factory=dict)


def _removed_balls(
    density: np.ndarray,
    voxel_size_a: float,
    count: int,
    removed_mass: tuple[float, float],
    rng: np.random.Generator,
) -> list[tuple[np.ndarray, float]]:
    """``count`` balls ``(centre (3,) Å from the box centre, z y x; radius Å)``, each holding a
    fraction of ``density``'s positive mass drawn uniformly from ``removed_mass``."""
    mass = np.clip(density, 0.0, None).ravel()
    centre = (np.array(density.shape) - 1) / 2.0
    grid = np.stack(np.indices(density.shape), axis=-1).reshape(-1, 3).astype(np.float64)
    balls = []
    for _ in range(count):
        seed_voxel = grid[rng.choice(len(mass), p=mass / mass.sum())]
        distance = np.linalg.norm(grid - seed_voxel, axis=1)
        order = np.argsort(distance)
        reached = np.searchsorted(np.cumsum(mass[order]), rng.uniform(*removed_mass) * mass.sum())
        radius = distance[order[min(reached, len(order) - 1)]]
        balls.append(((seed_voxel - centre) * voxel_size_a, float(radius * voxel_size_a)))
    return balls


def _without_ball(
    density: np.ndarray, voxel_size_a: float, ball: tuple[np.ndarray, float]
) -> np.ndarray:
    """``density`` with the ball (centre Å from the box centre, radius Å) set to zero."""
    centre = (np.array(density.shape) - 1) / 2.0 + ball[0] / voxel_size_a
    distance = np.linalg.norm(np.stack(np.indices(density.shape), axis=-1) - centre, axis=-1)
    return np.where(distance <= ball[1] / voxel_size_a, 0.0, density).astype(density.dtype)


def _catalogue(structures: Sequence[str | Path], settings: PretrainSettings) -> _Catalogue:
    from cryomine.structures import StructureCroppedWarning, structure_density

    names = [Path(s).name.split(".")[0].removesuffix("_10A") for s in map(str, structures)]
    if len(set(names)) != len(names):
        raise InputError(f"structures {names}: each structure may appear once")
    catalogue = _Catalogue(names=names)
    for voxel in settings.voxel_sizes_a:
        fitting = {}
        for name, structure in zip(names, structures, strict=True):
            natural = structure_density(structure, voxel_size_a=voxel).shape[0]
            low, high = settings.structure_box_range
            if not low <= natural <= high:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", StructureCroppedWarning)
                fitting[name] = structure_density(
                    structure, voxel_size_a=voxel, box_size=settings.box_size
                )
        if len(fitting) >= 2:
            catalogue.densities[float(voxel)] = fitting
    if settings.variants > 0:
        _add_variants(catalogue, settings)
    if not catalogue.densities:
        raise InputError(
            f"no voxel size in {settings.voxel_sizes_a} Å holds two of the structures in a "
            f"{settings.box_size}³ box: give more structures or other voxel sizes"
        )
    return catalogue


def _add_variants(catalogue: _Catalogue, settings: PretrainSettings) -> None:
    """Add ``settings.variants`` ball-removed copies of every structure (module docstring)."""
    rng = np.random.default_rng([settings.seed, 1])
    balls: dict[str, list[tuple[np.ndarray, float]]] = {}
    for voxel, fitting in sorted(catalogue.densities.items()):
        for name in sorted(fitting):
            if name not in balls:  # drawn once, at the finest voxel size the structure fits
                balls[name] = _removed_balls(
                    fitting[name], voxel, settings.variants, settings.variant_removed_mass, rng
                )
            for j, ball in enumerate(balls[name]):
                variant = f"{name}~v{j}"
                fitting[variant] = _without_ball(fitting[name], voxel, ball)
                catalogue.variant_of[variant] = name
    catalogue.names += sorted(catalogue.variant_of)


def _batch(
    catalogue: _Catalogue, settings: PretrainSettings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One simulated batch: ``(B, S, S, S)`` filtered, z-scored volumes and structure ids."""
    from cryomine.simulate import simulate_subtomograms

    voxel = float(rng.choice(sorted(catalogue.densities)))
    available = catalogue.densities[voxel]
    originals = sorted(n for n in available if n not in catalogue.variant_of)
    if catalogue.variant_of:
        bases = rng.choice(
            originals, size=min(settings.structures_per_batch // 2, len(originals)), replace=False
        )
        chosen: list[str] = []
        for base in bases:  # each beside one of its variants: the hard negatives
            chosen += [str(base), f"{base}~v{rng.integers(settings.variants)}"]
    else:
        chosen = [
            str(name)
            for name in rng.choice(
                originals, size=min(settings.structures_per_batch, len(originals)), replace=False
            )
        ]
    low, high = np.log(settings.snr_range[0]), np.log(settings.snr_range[1])
    tilt = float(rng.uniform(*settings.tilt_half_range_deg))
    simulated = simulate_subtomograms(
        {name: available[name] for name in chosen},
        n_per_class=settings.views,
        snr=float(np.exp(rng.uniform(low, high))),
        tilt_range_deg=(-tilt, tilt),
        box_size=settings.box_size,
        voxel_size_a=voxel,
        defocus_um=float(rng.uniform(*settings.defocus_um)),
        mode=str(rng.choice(["fourier", "tilt-series"])),  # type: ignore[arg-type]
        seed=int(rng.integers(2**31 - 1)),
    )
    volumes = np.concatenate(list(simulated.iter_subtomograms()))
    classes = simulated.table["cmTrueClass"].to_numpy() - 1
    ids = np.array([catalogue.names.index(str(chosen[c])) for c in classes])
    source = SubtomogramSource(volumes, lowpass_fraction=lowpass_fraction("auto", voxel))
    return source.read(np.arange(len(volumes))), ids


def pretrain_trunk(
    structures: Sequence[str | Path],
    settings: PretrainSettings,
    *,
    device: str = "auto",
    checkpoint_dir: Path | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    start_from: str | Path | None = None,
) -> tuple[YOPO, dict[str, Any]]:
    """Pretrain a YOPO trunk on simulated ``structures``; returns it and a record.

    ``start_from`` (``"builtin"`` or a trunk directory, see :func:`pretrained_path`) fine-tunes
    that trunk instead of starting from random weights.

    The record (JSON-ready) holds the settings, structure names, which structures fit at each
    voxel size, the loss every ``checkpoint_every`` steps and timings. With ``checkpoint_dir``
    training resumes from the last checkpoint (same seed: same result). The BatchNorm
    statistics are re-estimated at the end on one simulated batch per voxel size.
    """
    if len(structures) < 2:
        raise InputError(f"{len(structures)} structures: contrastive pretraining needs >= 2")
    if settings.steps < 1:
        raise InputError(f"steps {settings.steps}: expected a positive number of optimizer steps")
    if settings.views < 2:
        raise InputError(f"views {settings.views}: expected >= 2 (positives are needed)")
    start = time.perf_counter()
    catalogue = _catalogue(structures, settings)
    resolved = resolve_device(device)
    rng = np.random.default_rng(settings.seed)
    trunk = YOPO(width=settings.width, init_generator=torch.Generator().manual_seed(settings.seed))
    if start_from is not None:
        trunk.load_state_dict(load_pretrained_trunk(start_from, width=settings.width)[0])
    trunk = trunk.to(resolved)
    trunk.generator = torch.Generator(device=resolved).manual_seed(settings.seed + 1)
    optimizer = torch.optim.AdamW(
        trunk.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, settings.steps) / settings.steps))
    )
    losses: list[dict[str, float]] = []
    step = 0
    checkpoint = checkpoint_dir / "latest" if checkpoint_dir is not None else None
    if checkpoint is not None and checkpoint.is_dir():
        meta, tensors, _ = read_bundle(checkpoint)
        if meta["settings"] != settings.json():
            raise InputError(f"{checkpoint}: written with other settings; use a new directory")
        trunk.load_state_dict(tensors["trunk"])
        optimizer.load_state_dict(tensors["optimizer"])
        scheduler.load_state_dict(tensors["scheduler"])
        trunk.generator.set_state(tensors["generator"])
        rng.bit_generator.state = meta["rng"]
        step, losses = int(meta["step"]), meta["losses"]
    trunk.train()
    window: list[float] = []
    while step < settings.steps:
        volumes, ids = _batch(catalogue, settings, rng)
        tensor = torch.as_tensor(volumes, device=resolved).unsqueeze(1)
        loss = supervised_contrastive_loss(
            trunk(tensor), torch.as_tensor(ids, device=resolved), settings.temperature
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        step += 1
        window.append(float(loss.detach()))
        if progress is not None:
            progress(step, settings.steps, window[-1])
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            losses.append({"step": step, "loss": float(np.mean(window))})
            window = []
            logger.info("pretraining step %d: loss %.4f", step, losses[-1]["loss"])
            if checkpoint is not None:
                write_bundle(
                    checkpoint,
                    meta={"settings": settings.json(), "step": step, "losses": losses,
                          "rng": rng.bit_generator.state},
                    tensors={"trunk": trunk.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(),
                             "generator": trunk.generator.get_state()},
                    arrays={}, overwrite=True,
                )  # fmt: skip
    calibration = [
        _batch(_Catalogue(catalogue.names, {voxel: densities}), settings, rng)[0]
        for voxel, densities in sorted(catalogue.densities.items())
        for _ in range(_CALIBRATION_BATCHES)
    ]
    recalibrate_batchnorm(
        trunk, SubtomogramSource(np.concatenate(calibration)), batch_size=32, device=resolved,
        mixed_precision=False,
    )  # fmt: skip
    trunk.eval()
    record = {
        "format": PRETRAINED_FORMAT,
        "settings": settings.json(),
        "structures": [n for n in catalogue.names if n not in catalogue.variant_of],
        "variants": len(catalogue.variant_of),
        "started_from": None if start_from is None else str(start_from),
        "structures_per_voxel_size": {
            str(v): sorted(n for n in d if n not in catalogue.variant_of)
            for v, d in sorted(catalogue.densities.items())
        },
        "losses": losses,
        "wall_s": time.perf_counter() - start,
        "device": str(resolved),
    }
    return trunk, record


def shipped_trunks() -> dict[float, Path]:
    """Width → directory of every pretrained trunk shipped in ``cryomine/data/yopo/``."""
    from importlib import resources

    root = Path(str(resources.files("cryomine.data") / "yopo"))
    shipped = {}
    for folder in sorted(root.glob("w*")) if root.is_dir() else []:
        try:
            shipped[float(folder.name[1:])] = folder
        except ValueError:
            continue
    return shipped


def pretrained_path(pretrained: str | Path, width: float) -> Path:
    """The directory of a pretrained trunk: ``"builtin"`` (the one shipped for ``width``) or a path."""
    if str(pretrained) == BUILTIN:
        shipped = shipped_trunks()
        if float(width) not in shipped:
            widths = ", ".join(f"{w:g}" for w in shipped) or "none"
            raise InputError(
                f"no pretrained YOPO trunk is shipped for width {width:g} (shipped: {widths}); "
                "use that width, start from random weights (pretrained=None, --pretrained none), "
                "or train one with benchmarks/pretrain_yopo.py and pass its directory"
            )
        return shipped[float(width)]
    path = Path(pretrained)
    if not path.is_dir():
        raise InputError(f"pretrained trunk {path}: no such directory")
    return path


def load_pretrained_trunk(
    pretrained: str | Path, *, width: float
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The trunk state dict and training record of a pretrained trunk (see :func:`pretrained_path`)."""
    path = pretrained_path(pretrained, width)
    meta, tensors, _ = read_bundle(path)
    if meta.get("format") != PRETRAINED_FORMAT:
        raise InputError(
            f"{path}: not a pretrained YOPO trunk (format {meta.get('format')!r}, expected "
            f"{PRETRAINED_FORMAT!r})"
        )
    trained_width = float(meta["settings"]["width"])
    if trained_width != float(width):
        raise InputError(
            f"{path}: pretrained at width {trained_width}, but the sort uses width {width}; "
            f"pass width={trained_width} (--width {trained_width:g})"
        )
    return tensors["trunk"], meta


def pretrained_features(
    data: Any,
    *,
    width: float = 0.25,
    voxel_size_a: float | None = None,
    device: str = "auto",
    batch_size: int = 32,
) -> np.ndarray:
    """Features ``(N, D)`` float32 of subtomograms from the shipped trunk, untouched by any fit.

    ``data`` is a particle set or an ``(N, S, S, S)`` array (``voxel_size_a`` in Å for arrays);
    the input goes through DISCA's transform (half-Nyquist low-pass at ``"auto"``, z-score).
    """
    state, _ = load_pretrained_trunk(BUILTIN, width=width)
    trunk = YOPO(width=width)
    trunk.load_state_dict(state)
    target = resolve_device(device)
    source = as_source(data, lowpass_a="auto", voxel_size_a=voxel_size_a)
    return extract_features(trunk.to(target), source, batch_size=batch_size, device=target)
