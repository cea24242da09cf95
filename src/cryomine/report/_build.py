"""``build_report`` / ``write_report``: one self-contained HTML page about a DISCA sort run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cryomine.errors import InputError
from cryomine.io import COLUMNS, atomic_write_text, positions_zyx, tomogram_name
from cryomine.report import _figures as fig
from cryomine.report import _html as h
from cryomine.report._run import RunData, load_run

__all__ = ["build_report", "write_report"]

logger = logging.getLogger(__name__)

#: Subtomograms averaged per class for the "class mean" when no averages are given.
_MEAN_MAX = 500


def _run_section(data: RunData) -> str:
    record = data.record
    if record is None:
        return h.section("Run", "<p>No run.json in the run directory.</p>", anchor="run")
    argv = record.get("argv") or []
    overview = {
        "command": record.get("command"), "cryomine version": record.get("cryomine_version"),
        "seed": record.get("seed"), "finished (UTC)": record.get("finished_utc"),
        "run directory": str(data.run_dir),
    }  # fmt: skip
    parts = [
        h.key_value_table(overview),
        f"<h3>Command line</h3><pre>{h.text(' '.join(str(a) for a in argv))}</pre>" if argv else "",
        "<h3>Parameters</h3>" + h.key_value_table(record.get("parameters") or {}),
        "<h3>Machine</h3>" + h.key_value_table(record.get("machine") or {}),
        "<h3>Durations (s)</h3>" + h.key_value_table(record.get("timings_s") or {}),
    ]
    if record.get("results"):
        parts.append("<h3>Results</h3>" + h.key_value_table(record["results"]))
    return h.section("Run", "".join(parts), anchor="run")


def _history_section(data: RunData) -> str:
    if not data.history:
        return h.section("EM iterations", "<p>No history.json in the run.</p>", anchor="history")
    rows = []
    for e in data.history:
        timings = e.get("timings_s") or {}
        change = e.get("label_change")
        rows.append([
            int(e["iteration"]) + 1, fig.class_count(e), e.get("ddbi"),
            None if change is None else f"{100 * change:.2f} %",
            None if e.get("warm_used") is None else ("warm" if e["warm_used"] else "fresh"),
            e.get("loss"), sum(float(v) for v in timings.values()),
        ])  # fmt: skip
    body = h.figure(fig.history_figure(data.history), alt="per-iteration curves",
                    caption="Chosen number of classes K, BIC of every candidate K (one line per "
                    "iteration, chosen K circled), DDBI and the fraction of labels that changed "
                    "from the previous iteration.")  # fmt: skip
    body += h.table(["iteration", "K", "DDBI", "labels changed", "mixture start", "loss",
                     "time (s)"], rows)  # fmt: skip
    return h.section("EM iterations", body, anchor="history")


def _embedding_section(data: RunData, *, seed: int, max_points: int) -> str:
    if data.features is None:
        return h.section("Feature embedding", "<p>No features.npy in the run.</p>",
                         anchor="embedding")  # fmt: skip
    n = len(data.features)
    if n < 5:
        return h.section("Feature embedding", f"<p>Only {n} particles; no embedding.</p>",
                         anchor="embedding")  # fmt: skip
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n, size=max_points, replace=False)) if n > max_points else None
    rows = slice(None) if chosen is None else chosen
    points = fig.embedding_2d(data.features[rows], seed=seed)
    truth = None if data.truth is None else data.truth[rows]
    shown = n if chosen is None else len(chosen)
    caption = (
        f"t-SNE of the final features (PCA to 16 dimensions first) of {shown} of {n} particles"
        f"{' (random subsample)' if chosen is not None else ''}, seed {seed}. The run stores only "
        "the final features (features.npy, network of the best-DDBI iteration), not those of "
        "earlier iterations, so only the final embedding is shown."
    )
    body = h.figure(fig.embedding_figure(points, data.classes[rows], truth), alt="feature map",
                    caption=caption)  # fmt: skip
    return h.section("Feature embedding", body, anchor="embedding")


def _evaluation_section(data: RunData) -> tuple[str, dict[str, Any] | None]:
    if data.truth is None:
        return "", None
    from cryomine.evaluate import sorting_metrics

    metrics = sorting_metrics(data.truth, data.classes)
    values = metrics.to_dict()
    shown = {k: values[k] for k in (
        "n_particles", "n_true_classes", "n_predicted_classes", "k_correct", "accuracy",
        "homogeneity", "completeness", "v_measure", "adjusted_rand")}  # fmt: skip
    shown["matching (class → truth)"] = values["matching"]
    body = f"<p>Truth column <code>{h.text(data.truth_column)}</code>.</p>"
    body += h.table(["metric", "value"], shown.items(), css_class="metrics")
    body += h.figure(
        fig.confusion_figure(np.asarray(metrics.confusion), metrics.true_classes,
                             metrics.predicted_classes),
        alt="confusion matrix", caption="Particles of each true structure (rows) in each class.",
    )  # fmt: skip
    return h.section("Evaluation against the truth", body, anchor="evaluation"), values


def _class_card(data: RunData, k: int, *, rng: np.random.Generator, n_members: int) -> str:
    members = np.flatnonzero(data.classes == k)
    n = len(data.classes)
    parts = [f"<p>{len(members)} particles ({100 * len(members) / n:.1f} %)"]
    if "rlnMaxValueProbDistribution" in data.table.columns:
        probability = data.table["rlnMaxValueProbDistribution"].to_numpy()[members]
        parts.append(f"; mean posterior {float(np.mean(probability)):.3f}")
    if data.truth is not None:
        names, counts = np.unique(data.truth[members], return_counts=True)
        top = int(np.argmax(counts))
        parts.append(f"; mostly {h.text(names[top])} ({100 * counts[top] / len(members):.0f} %)")
    averages = data.averages.get(k)
    if averages is not None:
        resolution = averages.resolution_a
        parts.append("; not resolved (FSC below 0.143)" if resolution is None
                     else f"; resolution {resolution:.1f} Å (FSC 0.143)")  # fmt: skip
    parts.append("</p>")
    volume: np.ndarray | None = None
    if averages is not None:
        volume, label = averages.average, "class average (cryomine average)"
    elif data.particles is not None and len(members):
        picked = members if len(members) <= _MEAN_MAX else np.sort(
            rng.choice(members, size=_MEAN_MAX, replace=False))  # fmt: skip
        volume = data.particles.read(picked).mean(axis=0)
        label = (f"mean of {len(picked)} member subtomograms, unaligned "
                 "(not a class average; pass --averages for one)")  # fmt: skip
    if volume is not None:
        parts.append(h.figure(fig.slices_figure(volume), alt=f"class {k} central slices",
                              caption=f"Central slices of the {label}."))  # fmt: skip
        surface, how = fig.surface_figure(volume)
        parts.append(h.figure(surface, alt=f"class {k} render", caption=f"{how.capitalize()}."))
    if averages is not None and averages.fsc is not None:
        fsc = averages.fsc
        parts.append(h.figure(
            fig.fsc_figure(fsc["frequency_per_a"].to_numpy(), fsc["fsc"].to_numpy(),
                           averages.resolution_a),
            alt=f"class {k} FSC", caption="Half-map FSC (gold standard), threshold 0.143.",
        ))  # fmt: skip
    if data.particles is not None and len(members):
        shown = np.sort(rng.choice(members, size=min(n_members, len(members)), replace=False))
        parts.append(h.figure(fig.members_figure(data.particles.read(shown)),
                              alt=f"class {k} members",
                              caption=f"Central xy slices of particles {shown.tolist()} "
                              "(0-based rows)."))  # fmt: skip
    return h.card(k, fig.class_color(k), f"Class {k}", "".join(parts))


def _classes_section(data: RunData, *, seed: int, n_members: int) -> str:
    rng = np.random.default_rng(seed)
    cards = [_class_card(data, k, rng=rng, n_members=n_members) for k in data.class_numbers]
    return h.section("Classes", f'<div class="gallery">{"".join(cards)}</div>', anchor="classes")


def _central_z_slice(path: Path) -> tuple[np.ndarray, tuple[int, ...], float]:
    """``(slice (Y, X), shape (Z, Y, X), voxel_size_a)`` without reading the whole volume."""
    import mrcfile

    from cryomine.io import read_mrc_header

    shape, voxel = read_mrc_header(path)
    if len(shape) != 3:
        raise InputError(f"{path}: expected a 3-D volume, got shape {shape}")
    opener = mrcfile.open if path.suffix.lower() == ".gz" else mrcfile.mmap
    with opener(path, mode="r", permissive=True) as handle:
        image = np.array(handle.data[shape[0] // 2])
    return image, shape, voxel


def _labels_path(annotation: Path) -> Path:
    """The integer label map: ``annotation`` itself, or ``<stem>_labels.mrc`` beside a density."""
    import mrcfile

    with mrcfile.open(annotation, mode="r", header_only=True, permissive=True) as handle:
        mode = int(handle.header.mode)
    if mode in (0, 1, 6):  # int8, int16, uint16
        return annotation
    sibling = annotation.with_name(f"{annotation.name.split('.')[0]}_labels.mrc")
    if sibling.is_file():
        return sibling
    raise InputError(
        f"{annotation}: a float density map and no {sibling.name} beside it; pass the integer "
        "label map written by cryomine place (--labels, default OUTPUT_labels.mrc)"
    )


def _check_tomogram_inputs(tomogram: Path, annotation: Path | None) -> Path | None:
    """Validate the tomogram (3-D MRC) and return the label map path matching its shape."""
    from cryomine.io import read_mrc_header

    shape, _ = read_mrc_header(tomogram)
    if len(shape) != 3:
        raise InputError(f"{tomogram}: expected a 3-D tomogram, got shape {shape}")
    if annotation is None:
        return None
    labels_path = _labels_path(annotation)
    label_shape, _ = read_mrc_header(labels_path)
    if tuple(label_shape) != tuple(shape):
        raise InputError(f"{labels_path}: shape {label_shape} differs from the tomogram's "
                         f"{shape}")  # fmt: skip
    return labels_path


def _tomogram_section(data: RunData, tomogram: Path, labels_path: Path | None) -> str:
    image, shape, voxel = _central_z_slice(tomogram)
    z = shape[0] // 2
    labels = None if labels_path is None else _central_z_slice(labels_path)[0]
    name = tomogram_name(tomogram)
    rows = np.flatnonzero(data.table[COLUMNS.tomo_name].astype(str).to_numpy() == name)
    picks = None
    classes = None
    box = 8.0
    if len(rows):
        table = data.table.iloc[rows]
        ratio = table[COLUMNS.pixel_size].to_numpy(dtype=np.float64) / voxel
        zyx = positions_zyx(table) * ratio[:, None]
        if data.particles is not None:
            box = data.particles.box_size * data.particles.voxel_size_a / voxel
        near = np.abs(zyx[:, 0] - z) <= box / 4
        picks, classes = zyx[near, 1:], data.classes[rows][near]
    caption = (
        f"Central z slice (z = {z}) of {tomogram.name}; "
        + (f"classes placed from {labels_path.name} in class colours; "
           if labels_path is not None else "")
        + f"circles: {0 if picks is None else len(picks)} of the run's {len(rows)} particles in "
        f"tomogram {name!r} whose centre lies within a quarter box of this slice, in class colours."
    )  # fmt: skip
    body = h.figure(fig.tomogram_figure(image, labels_slice=labels, picks_yx=picks,
                                        pick_classes=classes, pick_radius_px=box / 4),
                    alt="tomogram slice",
                    caption=caption)  # fmt: skip
    return h.section("Tomogram", body, anchor="tomogram")


def build_report(
    run_dir: Path | str,
    *,
    averages_dir: Path | str | None = None,
    tomogram: Path | str | None = None,
    annotation: Path | str | None = None,
    seed: int = 0,
    max_points: int = 2000,
    n_members: int = 6,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Render a sort run as one self-contained HTML page.

    Parameters
    ----------
    run_dir
        Output directory of ``cryomine sort``.
    averages_dir
        Output directory of ``cryomine average``: class averages, FSC curves, resolutions.
        Without it each class shows the unaligned mean of its subtomograms, labelled as such.
    tomogram
        Tomogram MRC: its central z slice is drawn with the run's particles near it.
    annotation
        Label map from ``cryomine place`` (or its density with ``<stem>_labels.mrc`` beside it),
        drawn over the tomogram slice; needs ``tomogram``.
    seed
        Seed of the subsampling, t-SNE and the member subtomograms shown.
    max_points
        Particles at most in the feature embedding (a random subsample above).
    n_members
        Member subtomograms shown per class.
    progress
        ``progress(done, total)`` over the report's sections.

    Returns
    -------
    str
        The HTML document (images embedded as base64 PNG, inline CSS, no scripts).
    """
    if annotation is not None and tomogram is None:
        raise InputError("--annotation needs --tomogram (the slice to draw the classes over)")
    tomogram = None if tomogram is None else Path(tomogram)
    annotation = None if annotation is None else Path(annotation)
    labels_path = None if tomogram is None else _check_tomogram_inputs(tomogram, annotation)
    data = load_run(run_dir, averages_dir=averages_dir)
    steps: list[Callable[[], str]] = [
        lambda: _run_section(data),
        lambda: _history_section(data),
        lambda: _embedding_section(data, seed=seed, max_points=max_points),
        lambda: _evaluation_section(data)[0],
        lambda: _classes_section(data, seed=seed, n_members=n_members),
    ]
    if tomogram is not None:
        steps.append(lambda: _tomogram_section(data, tomogram, labels_path))
    sections = []
    if data.notes:
        notes = "".join(f"<li>{h.text(note)}</li>" for note in data.notes)
        sections.append(h.section("Notes", f"<ul>{notes}</ul>", anchor="notes", css_class="notes"))
    for done, step in enumerate(steps):
        sections.append(step())
        if progress is not None:
            progress(done + 1, len(steps))
    n_classes = len(data.class_numbers)
    subtitle = (
        f"{len(data.classes)} particles in {n_classes} classes · run {data.run_dir} · "
        f"report made {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    return h.page("cryomine DISCA sort report", subtitle, sections)


def write_report(path: Path | str, run_dir: Path | str, **options: Any) -> Path:
    """:func:`build_report` written atomically to ``path`` (UTF-8); returns ``path``."""
    path = Path(path)
    document = build_report(run_dir, **options)
    atomic_write_text(path, document)
    logger.info("wrote report %s (%.1f MB)", path, len(document) / 1e6)
    return path
