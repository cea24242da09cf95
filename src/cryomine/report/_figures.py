"""Report figures, drawn with matplotlib's Agg backend and returned as PNG bytes.

Figures are built with :class:`matplotlib.figure.Figure` directly (never ``pyplot``), so drawing
touches no global state and needs no display. Volumes are ``(z, y, x)`` arrays; images are drawn
with row 0 at the top, x to the right.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.collections import PatchCollection
from matplotlib.colors import ListedColormap, to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Circle

__all__ = [
    "ISOSURFACE_AVAILABLE",
    "class_color",
    "class_count",
    "clusters_figure",
    "confusion_figure",
    "embedding_2d",
    "embedding_figure",
    "fsc_figure",
    "history_figure",
    "members_figure",
    "slices_figure",
    "surface_figure",
    "tomogram_figure",
]

logger = logging.getLogger(__name__)

try:  # optional: scikit-image gives isosurfaces, else maximum-intensity projections are drawn
    from skimage.measure import marching_cubes as _marching_cubes

    ISOSURFACE_AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the environment
    _marching_cubes = None
    ISOSURFACE_AVAILABLE = False

_DPI = 100
_PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
]  # fmt: skip


def class_color(class_number: int) -> str:
    """Hex colour of a 1-based class (the same in every figure and in the HTML)."""
    return _PALETTE[(int(class_number) - 1) % len(_PALETTE)]


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _display_range(image: np.ndarray) -> tuple[float, float]:
    """1st-99th percentile of finite values (a flat image gets a unit range)."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [1.0, 99.0])
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


def class_count(entry: Mapping[str, Any]) -> Any:
    """The number of classes K of a history entry: ``n_classes``, else (runs written before
    the rename) ``n_clusters``; ``None`` when it has neither."""
    return entry["n_classes"] if "n_classes" in entry else entry.get("n_clusters")


def history_figure(history: Sequence[Mapping[str, Any]]) -> bytes:
    """Per-iteration curves of a sort run: chosen K, BIC per candidate K, DDBI, label change.

    Parameters
    ----------
    history
        ``history.json`` entries with ``iteration`` (0-based), ``n_classes`` (or its former
        name ``n_clusters``, in runs written before the rename),
        ``candidate_bic`` (``{"K": bic}``), ``ddbi`` and ``label_change`` (fraction or None).
        Entries of multi-pattern pursuit have no BIC nor DDBI: their ``mean_best_score`` is
        drawn instead of the DDBI.
    """
    iterations = np.array([int(e["iteration"]) + 1 for e in history])
    figure = Figure(figsize=(12, 3.2), layout="constrained")
    ax_k, ax_bic, ax_ddbi, ax_change = figure.subplots(1, 4)
    ax_k.plot(iterations, [class_count(e) for e in history], "o-", color="#1f77b4")
    ax_k.set(title="chosen K", xlabel="iteration", ylabel="classes")
    ax_k.yaxis.get_major_locator().set_params(integer=True)
    colours = colormaps["viridis"]
    for i, entry in enumerate(history):
        bic = entry.get("candidate_bic") or {}
        if not bic:
            continue
        ks = sorted(bic, key=int)
        values = [bic[k] if bic[k] is not None else np.nan for k in ks]
        shade = i / max(1, len(history) - 1)
        color = colours(shade)
        ax_bic.plot([int(k) for k in ks], values, ".-", color=color, label=f"it {iterations[i]}")
        chosen = str(class_count(entry))
        if chosen in bic and bic[chosen] is not None:
            ax_bic.plot(int(chosen), bic[chosen], "o", mfc="none", mec="black")
    ax_bic.set(title="BIC of each candidate K (o: chosen)", xlabel="K", ylabel="BIC")
    if 0 < len(history) <= 8 and ax_bic.get_legend_handles_labels()[0]:
        ax_bic.legend(fontsize="x-small")
    if any("ddbi" in e for e in history):
        ax_ddbi.plot(iterations, [e.get("ddbi", np.nan) for e in history], "o-", color="#d62728")
        best = [e.get("best_iteration") for e in history]
        if best and best[-1] is not None:
            ax_ddbi.axvline(int(best[-1]) + 1, color="grey", ls=":", label="best (lowest DDBI)")
            ax_ddbi.legend(fontsize="x-small")
        ax_ddbi.set(title="DDBI (lower is better)", xlabel="iteration", ylabel="DDBI")
    else:  # multi-pattern pursuit: no DDBI, the mean score of each particle's best pattern
        scores = [e.get("mean_best_score", np.nan) for e in history]
        ax_ddbi.plot(iterations, scores, "o-", color="#d62728")
        ax_ddbi.set(title="mean alignment score (MPP)", xlabel="iteration", ylabel="score")
    change = [np.nan if e.get("label_change") is None else 100 * e["label_change"] for e in history]
    ax_change.plot(iterations, change, "o-", color="#2ca02c")
    ax_change.set(title="labels changed", xlabel="iteration", ylabel="% of particles")
    for ax in (ax_k, ax_ddbi, ax_change):
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _png(figure)


def embedding_2d(features: np.ndarray, *, seed: int = 0, n_pca: int = 16) -> np.ndarray:
    """t-SNE map of features after a PCA reduction.

    Parameters
    ----------
    features : ndarray, shape (n, F)
        One feature vector per particle (n >= 5).
    seed
        Seed of the PCA solver and t-SNE.
    n_pca
        PCA dimensions kept before t-SNE (at most ``min(n, F)``).

    Returns
    -------
    ndarray of float64, shape (n, 2)
        Computed on one thread, so the map is reproducible across machines.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    data = np.asarray(features, dtype=np.float64)
    n_components = max(1, min(n_pca, data.shape[0], data.shape[1]))
    perplexity = float(min(30.0, (len(data) - 1) / 3.0))
    # One thread: the same map on every machine, and no OpenMP spin-waiting on busy CPUs
    # (t-SNE of 120 points took 28 s with all threads on 2 loaded cores, 0.5 s with one).
    with threadpool_limits(limits=1):
        reduced = PCA(n_components=n_components, random_state=seed).fit_transform(data)
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                    n_jobs=1)  # fmt: skip
        return np.asarray(tsne.fit_transform(reduced), dtype=np.float64)


def _scatter_by(ax: Any, points: np.ndarray, values: np.ndarray, colors: Mapping[Any, Any],
                title: str) -> None:  # fmt: skip
    size = float(np.clip(4000.0 / max(len(points), 1), 6.0, 40.0))
    for value in sorted(set(values.tolist()), key=str):
        mask = values == value
        ax.scatter(points[mask, 0], points[mask, 1], s=size, color=colors[value],
                   label=str(value), linewidths=0)  # fmt: skip
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize="x-small", markerscale=2, loc="best", ncols=2 if len(colors) > 8 else 1)


def embedding_figure(points: np.ndarray, classes: np.ndarray, truth: np.ndarray | None) -> bytes:
    """Feature map coloured by class and, when ``truth`` is given, side by side by true structure.

    Parameters
    ----------
    points : ndarray, shape (n, 2)
        2-D embedding (e.g. from :func:`embedding_2d`).
    classes : ndarray of int, shape (n,)
        1-based classes.
    truth : ndarray, shape (n,) or None
        True structure or class of each point.
    """
    panels = 1 if truth is None else 2
    figure = Figure(figsize=(5.2 * panels, 4.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, panels))
    class_colors = {k: class_color(k) for k in np.unique(classes).tolist()}
    _scatter_by(axes[0], points, np.asarray(classes), class_colors, "coloured by class")
    if truth is not None:
        truth = np.asarray(truth)
        names = sorted(set(truth.tolist()), key=str)
        cmap = colormaps["Dark2"]
        truth_colors = {name: cmap(i % 8) for i, name in enumerate(names)}
        _scatter_by(axes[1], points, truth, truth_colors, "coloured by true structure")
    return _png(figure)


def _central_slices(volume: np.ndarray) -> list[tuple[str, np.ndarray]]:
    z, y, x = (n // 2 for n in volume.shape)
    return [
        (f"z = {z} (xy)", volume[z]),
        (f"y = {y} (xz)", volume[:, y, :]),
        (f"x = {x} (yz)", volume[:, :, x]),
    ]


def slices_figure(volume: np.ndarray, *, title: str = "") -> bytes:
    """Three orthogonal central slices of a ``(z, y, x)`` volume (protein bright, grey scale)."""
    figure = Figure(figsize=(5.4, 2.1), layout="constrained")
    axes = figure.subplots(1, 3)
    low, high = _display_range(np.asarray(volume))
    for ax, (label, image) in zip(axes, _central_slices(np.asarray(volume)), strict=True):
        ax.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        ax.set_title(label, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        figure.suptitle(title, fontsize="small")
    return _png(figure)


def surface_figure(volume: np.ndarray) -> tuple[bytes, str]:
    """An isosurface render of a ``(z, y, x)`` volume, or maximum-intensity projections.

    The isosurface (scikit-image ``marching_cubes`` at mean + 1.5 sd, drawn with matplotlib 3-D)
    is used when scikit-image is installed; otherwise three maximum-intensity projections.

    Returns
    -------
    (bytes, str)
        PNG and a description of what was drawn.
    """
    data = np.asarray(volume, dtype=np.float32)
    level = float(data.mean() + 1.5 * data.std())
    if ISOSURFACE_AVAILABLE and data.max() > level > data.min():
        verts, faces, _, _ = _marching_cubes(data, level=level)
        figure = Figure(figsize=(3.4, 3.4), layout="constrained")
        ax = figure.add_subplot(projection="3d")
        ax.plot_trisurf(verts[:, 2], verts[:, 1], faces, verts[:, 0], color="#e0b060",
                        linewidth=0, antialiased=False)  # fmt: skip
        size = max(data.shape)
        ax.set(xlim=(0, size), ylim=(0, size), zlim=(0, size), xlabel="x", ylabel="y", zlabel="z")
        ax.set_box_aspect((1, 1, 1))
        return _png(figure), "isosurface at mean + 1.5 sd (scikit-image marching cubes)"
    figure = Figure(figsize=(5.4, 2.1), layout="constrained")
    axes = figure.subplots(1, 3)
    for ax, axis, label in zip(axes, (0, 1, 2), ("along z", "along y", "along x"), strict=True):
        ax.imshow(data.max(axis=axis), cmap="magma", interpolation="nearest")
        ax.set_title(f"max {label}", fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    return _png(figure), "maximum-intensity projections (scikit-image is not installed)"


def fsc_figure(frequency_per_a: np.ndarray, fsc: np.ndarray, resolution_a: float | None) -> bytes:
    """FSC curve with the 0.143 threshold and the resolution marked.

    Parameters
    ----------
    frequency_per_a, fsc : ndarray, shape (n_shells,)
        Shell spatial frequency (1/Å) and Fourier shell correlation.
    resolution_a
        Resolution at FSC = 0.143 (Å), or ``None``.
    """
    figure = Figure(figsize=(3.6, 2.6), layout="constrained")
    ax = figure.subplots()
    ax.plot(frequency_per_a, fsc, ".-", color="#1f77b4")
    ax.axhline(0.143, color="grey", ls="--", lw=1)
    if resolution_a is not None and resolution_a > 0:
        ax.axvline(1.0 / resolution_a, color="#d62728", ls=":", lw=1)
        ax.set_title(f"FSC: {resolution_a:.1f} Å at 0.143", fontsize="small")
    else:
        ax.set_title("FSC: not resolved", fontsize="small")
    ax.set(xlabel="spatial frequency (1/Å)", ylabel="FSC", ylim=(-0.2, 1.05))
    return _png(figure)


def members_figure(subtomograms: np.ndarray) -> bytes:
    """Central z slices (xy) of a few member subtomograms, ``(n, z, y, x)``, side by side."""
    n = len(subtomograms)
    figure = Figure(figsize=(1.1 * max(n, 1), 1.25), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, max(n, 1)))
    for ax, volume in zip(axes, subtomograms, strict=False):
        image = volume[volume.shape[0] // 2]
        low, high = _display_range(image)
        ax.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return _png(figure)


def clusters_figure(coordinates: np.ndarray, labels: np.ndarray, averages: np.ndarray) -> bytes:
    """A 2-D map of embeddings coloured by cluster, beside each cluster's average window.

    Parameters
    ----------
    coordinates : ndarray, shape (n, 2)
        The map (e.g. UMAP).
    labels : ndarray of int, shape (n,)
        0-based cluster of each point; -1 (in no cluster) is drawn grey, underneath.
    averages : ndarray, shape (k, z, y, x)
        Average window of each cluster; its central z slice (xy) is drawn, protein dark as in
        the tomogram, titled with the cluster and its number of members.
    """
    k = len(averages)
    columns = int(np.ceil(np.sqrt(max(k, 1))))
    rows = int(np.ceil(max(k, 1) / columns))
    figure = Figure(figsize=(5.0 + 1.4 * columns, max(4.6, 1.5 * rows)), layout="constrained")
    left, right = figure.subfigures(1, 2, width_ratios=[5.0, 1.4 * columns])
    ax = left.subplots()
    size = float(np.clip(4000.0 / max(len(coordinates), 1), 1.0, 20.0))
    none = labels < 0
    ax.scatter(*coordinates[none].T, s=size, color="#c7c7c7", linewidths=0, label="none")
    for c in range(k):
        member = labels == c
        ax.scatter(*coordinates[member].T, s=size, color=class_color(c + 1), linewidths=0,
                   label=str(c))  # fmt: skip
        centre = np.median(coordinates[member], axis=0)
        ax.annotate(str(c), centre, fontsize="small", weight="bold", ha="center", va="center")
    ax.set_title(f"UMAP of the sampled embeddings: {k} clusters")
    ax.set_xticks([])
    ax.set_yticks([])
    panels = np.atleast_1d(right.subplots(rows, columns)).ravel()
    for c, panel in enumerate(panels):
        panel.set_xticks([])
        panel.set_yticks([])
        if c >= k:
            panel.set_axis_off()
            continue
        image = averages[c][averages[c].shape[0] // 2]
        low, high = _display_range(image)
        panel.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        panel.set_title(
            f"{c}: {int(np.sum(labels == c))}", fontsize="small", color=class_color(c + 1)
        )
    return _png(figure)


def confusion_figure(confusion: np.ndarray, true_names: Sequence[Any],
                     class_numbers: Sequence[Any]) -> bytes:  # fmt: skip
    """Confusion matrix (true structure by class) with counts written in the cells.

    Parameters
    ----------
    confusion : ndarray of int, shape (n_true, n_classes)
        ``confusion[i, j]``: particles of ``true_names[i]`` sorted into ``class_numbers[j]``.
    """
    matrix = np.asarray(confusion)
    figure = Figure(
        figsize=(1.6 + 0.55 * matrix.shape[1], 1.2 + 0.45 * matrix.shape[0]),
        layout="constrained",
    )
    ax = figure.subplots()
    ax.imshow(matrix, cmap="Blues", aspect="auto")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize="small",
                color="white" if count > threshold else "black")  # fmt: skip
    ax.set_xticks(range(len(class_numbers)), [str(c) for c in class_numbers])
    ax.set_yticks(range(len(true_names)), [str(n) for n in true_names])
    ax.set(xlabel="class", ylabel="true structure")
    return _png(figure)


def tomogram_figure(
    tomogram_slice: np.ndarray,
    *,
    labels_slice: np.ndarray | None = None,
    picks_yx: np.ndarray | None = None,
    pick_classes: np.ndarray | None = None,
    pick_radius_px: float = 4.0,
    title: str = "",
) -> bytes:
    """A tomogram z slice with the placed class label map and the picks over it.

    Parameters
    ----------
    tomogram_slice : ndarray, shape (Y, X)
        Grey-scale slice (as stored; protein dark in a reconstruction).
    labels_slice : ndarray of int, shape (Y, X), optional
        Class numbers (0 = background), drawn half-transparent in class colours.
    picks_yx : ndarray, shape (n, 2), optional
        Particle centres (rows, columns) near the slice, drawn as circles...
    pick_classes : ndarray of int, shape (n,), optional
        ...in the colours of these 1-based classes...
    pick_radius_px
        ...with this radius in tomogram voxels.
    """
    height, width = tomogram_slice.shape
    scale = min(12.0 / width, 9.0 / height)
    figure = Figure(figsize=(max(4.0, width * scale), max(3.0, height * scale + 0.4)),
                    layout="constrained")  # fmt: skip
    ax = figure.subplots()
    low, high = _display_range(tomogram_slice)
    ax.imshow(tomogram_slice, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    if labels_slice is not None and np.any(labels_slice > 0):
        top = int(labels_slice.max())
        colours = [(0.0, 0.0, 0.0, 0.0)]
        colours += [to_rgba(class_color(k), 0.45) for k in range(1, top + 1)]
        ax.imshow(labels_slice.astype(np.int64), cmap=ListedColormap(colours), vmin=-0.5,
                  vmax=top + 0.5, interpolation="nearest")  # fmt: skip
    if picks_yx is not None and len(picks_yx):
        classes = pick_classes if pick_classes is not None else np.ones(len(picks_yx), int)
        circles = [Circle((x, y), pick_radius_px) for y, x in picks_yx]
        edges = [class_color(k) for k in classes]
        ax.add_collection(PatchCollection(circles, facecolors="none", edgecolors=edges,
                                          linewidths=1.5))  # fmt: skip
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize="small")
    return _png(figure)
