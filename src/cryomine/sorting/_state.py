"""The state of a DISCA run between iterations, and its checkpoints on disk."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryomine.errors import InputError
from cryomine.sorting._mixture import MixtureParams, PCAProjection
from cryomine.sorting._persist import arrays_from_fit, fit_from_arrays, read_bundle, write_bundle
from cryomine.sorting._yopo import YOPO, YOPOHead

__all__ = [
    "BestFit",
    "LoopState",
    "Trainables",
    "read_checkpoint",
    "rename_legacy_params",
    "with_class_counts",
    "write_checkpoint",
]


@dataclass
class BestFit:
    """The lowest-DDBI iteration so far: its labels, network (before training), PCA and mixture."""

    ddbi: float = float("inf")
    iteration: int = -1
    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    trunk_state: dict[str, torch.Tensor] | None = None
    pca: PCAProjection | None = None
    mixture: MixtureParams | None = None
    features: np.ndarray | None = None  # not checkpointed; recomputed from trunk_state if missing


@dataclass
class LoopState:
    """Where the EM loop stands: the next iteration, the current labels, the history."""

    iteration: int = 0
    labels: np.ndarray | None = None
    m_step_pending: bool = False
    finished: bool = False
    probe_features: np.ndarray | None = None  # (n_probe, D) features of the last iteration
    history: list[dict[str, Any]] = field(default_factory=list)
    best: BestFit = field(default_factory=BestFit)


@dataclass
class Trainables:
    """The network, head, optimizer and random generators of a run."""

    trunk: YOPO
    rng: np.random.Generator
    generator: torch.Generator
    head: YOPOHead | None = None
    optimizer: torch.optim.Optimizer | None = None

    def new_optimizer(self, learning_rate: float) -> torch.optim.Optimizer:
        """A fresh NAdam (0.9, 0.999, eps 1e-8) over trunk and head (the state resets)."""
        assert self.head is not None
        parameters = [*self.trunk.parameters(), *self.head.parameters()]
        self.optimizer = torch.optim.NAdam(
            parameters, lr=learning_rate, betas=(0.9, 0.999), eps=1e-8
        )
        return self.optimizer


def rename_legacy_params(params: dict[str, Any]) -> dict[str, Any]:
    """A copy of saved DISCA params (model or checkpoint JSON) with former names renamed and
    parameters added since filled in with the behaviour of the version that saved them."""
    params = dict(params)
    if "min_cluster_size" in params:
        params.setdefault("min_class_size", params.pop("min_cluster_size"))
    params.setdefault("split_classes", False)  # saved before the split test existed
    return params


def with_class_counts(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``history`` with ``n_classes`` in every entry that has only its former name
    ``n_clusters`` (entries written before the rename), in place; returns ``history``."""
    for entry in history:
        if "n_clusters" in entry and "n_classes" not in entry:
            entry["n_classes"] = entry["n_clusters"]
    return history


def write_checkpoint(path: Path, params: dict[str, Any], loop: LoopState, net: Trainables) -> None:
    """Write everything needed to continue the run to directory ``path`` (atomically replaced)."""
    best = loop.best
    if best.pca is None or best.mixture is None or loop.labels is None or best.labels is None:
        raise RuntimeError("checkpoint before the first iteration finished")
    meta = {
        "params": params,
        "iteration": loop.iteration,
        "m_step_pending": loop.m_step_pending,
        "finished": loop.finished,
        "history": loop.history,
        "numpy_rng": net.rng.bit_generator.state,
        "head_clusters": net.head.n_classes if net.head is not None else 0,
        "best_ddbi": best.ddbi,
        "best_iteration": best.iteration,
    }
    tensors = {
        "trunk": net.trunk.state_dict(),
        "head": net.head.state_dict() if net.head is not None else {},
        "optimizer": net.optimizer.state_dict() if net.optimizer is not None else {},
        "torch_rng": net.generator.get_state(),
        "best_trunk": best.trunk_state,
    }
    arrays = {
        "labels": loop.labels,
        "best_labels": best.labels,
        "best_probabilities": best.probabilities,
        **arrays_from_fit("best_", best.pca, best.mixture),
    }
    if loop.probe_features is not None:
        arrays["probe_features"] = loop.probe_features
    write_bundle(path, meta=meta, tensors=tensors, arrays=arrays, overwrite=True)  # type: ignore[arg-type]


def read_checkpoint(
    path: Path,
    params: dict[str, Any],
    resumable: set[str],
    net: Trainables,
    n_samples: int,
) -> LoopState:
    """Restore ``net`` (in place) and return the loop state from checkpoint directory ``path``.

    Raises :class:`InputError` if the checkpoint was made with other settings (except those in
    ``resumable``) or for another number of subtomograms.
    """
    meta, tensors, arrays = read_bundle(path)
    saved = rename_legacy_params(meta["params"])
    saved.setdefault("ddbi_across_k", True)  # the only rule before the option existed
    different = sorted(k for k in params if k not in resumable and saved.get(k) != params[k])
    if different:
        raise InputError(
            f"{path}: checkpoint was made with different settings ({', '.join(different)}); "
            "use the same settings or a new checkpoint directory"
        )
    if arrays["labels"].shape != (n_samples,):
        raise InputError(
            f"{path}: checkpoint is for {arrays['labels'].shape[0]} subtomograms, not {n_samples}"
        )
    device = next(net.trunk.parameters()).device
    net.trunk.load_state_dict(tensors["trunk"])
    if meta["head_clusters"]:
        net.head = YOPOHead(
            meta["head_clusters"],
            feature_dim=net.trunk.feature_dim,
            init_generator=torch.Generator(),
        ).to(device)
        net.head.load_state_dict(tensors["head"])
        net.new_optimizer(1.0).load_state_dict(tensors["optimizer"])
    net.rng.bit_generator.state = meta["numpy_rng"]
    net.generator.set_state(tensors["torch_rng"])
    pca, mixture = fit_from_arrays("best_", arrays)
    return LoopState(
        iteration=int(meta["iteration"]),
        labels=arrays["labels"],
        m_step_pending=bool(meta["m_step_pending"]),
        finished=bool(meta["finished"]),
        probe_features=arrays.get("probe_features"),
        history=with_class_counts(meta["history"]),
        best=BestFit(
            ddbi=float(meta["best_ddbi"]),
            iteration=int(meta["best_iteration"]),
            labels=arrays["best_labels"],
            probabilities=arrays["best_probabilities"],
            trunk_state=tensors["best_trunk"],
            pca=pca,
            mixture=mixture,
        ),
    )
