"""``cryomine sort --stages N``: run a sort in stages and merge the stages' tables into one.

Stage ``S`` is a complete run directory of the chosen method, ``RUN_DIR/stage-S``, on the
particles left after the earlier stages (its ``particles.star`` lists those particles only).
``RUN_DIR/particles.star`` holds every particle with its final ``rlnClassNumber`` (classes of
stage 1 first), the stage that found its class (``cmSortStage``) and whatever else the stage
wrote for it (orientations of MPP, ``rlnMaxValueProbDistribution`` of DISCA);
``RUN_DIR/stages.json`` holds each stage's split tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

__all__ = ["sort_in_stages_to"]


def _split_features(run_dir: Path, part: Any, device: str) -> np.ndarray:
    """Features of a stage's particles for the split test: the stage's own DISCA features when it
    wrote them, else those of the shipped pretrained trunk."""
    for path in (run_dir / "features.npy", run_dir / "disca" / "features.npy"):
        if path.exists():
            return np.load(path)
    from cryomine.sorting._pretrain import pretrained_features

    return pretrained_features(part, device=device)


def sort_in_stages_to(
    particles: Any,
    output: Path,
    sort_once: Callable[[Any, Path], np.ndarray],
    *,
    stages: int,
    parameters: dict[str, Any],
    device: str,
    seed: int,
    inputs: list[Path],
) -> None:
    """Sort ``particles`` in up to ``stages`` stages with ``sort_once(part, run_dir)`` (which
    writes ``run_dir`` and returns the 0-based labels of ``part``) and write ``output``."""
    from cryomine._runrecord import recording_run
    from cryomine.io import COLUMNS, read_particles, write_particles
    from cryomine.io._atomic import atomic_write_text
    from cryomine.sorting._stages import sort_in_stages

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    subsets: dict[int, np.ndarray] = {}

    def fit_stage(indices: np.ndarray, stage: int) -> tuple[np.ndarray, np.ndarray]:
        part = particles if indices.size == len(particles) else particles.subset(indices)
        run_dir = output / f"stage-{stage}"
        typer.echo(f"stage {stage}: sorting {indices.size} particles into {run_dir}", err=True)
        subsets[stage] = indices
        labels = sort_once(part, run_dir)
        return labels, _split_features(run_dir, part, device)

    def report(record: dict[str, Any]) -> None:
        passed = [t["class"] + 1 for t in record["tests"] if t["homogeneous"]]
        tested = f"; split test passed by classes {passed}" if record["tests"] else ""
        why = f" ({record['stopped']})" if record["stopped"] else ""
        typer.echo(
            f"stage {record['stage']}: {record['n_classes']} classes{tested}; "
            f"{len(record['kept'])} kept{why}",
            err=True,
        )

    with recording_run(output, "sort", parameters, seed=seed, inputs=inputs) as record:
        with record.timed("stages"):
            result = sort_in_stages(
                len(particles), fit_stage, stages=stages,
                test_options={"random_state": seed},
                callback=report,
            )  # fmt: skip
        with record.timed("write"):
            pieces = []
            for entry in result.stages:
                stage = entry["stage"]
                table = read_particles(output / f"stage-{stage}" / "particles.star")
                stage_labels = table[COLUMNS.class_number].to_numpy() - 1
                kept = np.isin(stage_labels, entry["kept"])
                piece = table[kept].copy()
                piece["_row"] = subsets[stage][kept]
                pieces.append(piece)
            merged = pd.concat(pieces, ignore_index=True).sort_values("_row")
            merged = merged.drop(columns="_row").reset_index(drop=True)
            merged[COLUMNS.class_number] = result.labels + 1
            merged[COLUMNS.sort_stage] = result.class_stage[result.labels]
            write_particles(output / "particles.star", merged)
            atomic_write_text(
                output / "stages.json", json.dumps(result.stages, indent=1, default=int) + "\n"
            )
        sizes = np.bincount(result.labels, minlength=result.n_classes)
        record.results.update({
            "n_particles": int(result.labels.size), "n_classes": result.n_classes,
            "class_sizes": sizes.tolist(), "class_stage": result.class_stage.tolist(),
            "n_stages_run": len(result.stages),
        })  # fmt: skip
    listing = ", ".join(
        f"{k + 1}: {n} (stage {s})"
        for k, (n, s) in enumerate(zip(sizes, result.class_stage, strict=True))
    )
    typer.echo(f"{result.n_classes} classes from {result.labels.size} particles ({listing})")
    typer.echo(f"wrote {output / 'particles.star'}")
