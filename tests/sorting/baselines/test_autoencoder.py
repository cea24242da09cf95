"""Autoencoder + clustering baseline: network shapes, training, shared K selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cryomine.sorting
from cryomine.errors import InputError
from cryomine.sorting.baselines import ConvAutoencoder, autoencoder_cluster, train_autoencoder


@pytest.mark.parametrize("box_size", [24, 21])
def test_codes_are_32_d_and_reconstructions_keep_the_box(box_size: int) -> None:
    model = ConvAutoencoder(box_size, init_generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    volumes = torch.randn(3, box_size, box_size, box_size, generator=generator)
    reconstruction, codes = model(volumes)
    assert codes.shape == (3, 32)
    assert reconstruction.shape == volumes.shape


def test_training_decreases_the_loss(baseline_set) -> None:
    """On the central 12³ of the tiny set (small, so the test is fast)."""
    volumes = baseline_set.volumes[:, 6:18, 6:18, 6:18]
    volumes = (volumes - volumes.mean(axis=(1, 2, 3), keepdims=True)) / volumes.std(
        axis=(1, 2, 3), keepdims=True
    )
    model = ConvAutoencoder(12, init_generator=torch.Generator().manual_seed(0))
    losses = train_autoencoder(
        model, volumes.astype(np.float32), epochs=6, batch_size=1, learning_rate=1e-3,
        rng=np.random.default_rng(0), device=torch.device("cpu"),
    )  # fmt: skip
    assert len(losses) == 6
    assert losses[-1] < 0.9 * losses[0]
    assert not model.training  # left in eval mode


def test_k_is_chosen_by_the_shared_mixture_selection(baseline_set, monkeypatch) -> None:
    calls = []
    real = cryomine.sorting.select_mixture

    def spy(reduced, **options):
        selection = real(reduced, **options)
        calls.append((reduced.shape, list(options["k_candidates"]), selection.n_classes))
        return selection

    monkeypatch.setattr(cryomine.sorting, "select_mixture", spy)
    result = autoencoder_cluster(
        baseline_set.volumes, k_range=(2, 4), epochs=2, batch_size=4, pca_components=4,
        device="cpu", random_state=0,
    )  # fmt: skip
    assert calls == [((9, 4), [2, 3, 4], result.n_classes)]
    assert result.codes.shape == (9, 32)
    assert set(result.bic) == {2, 3, 4}
    assert np.unique(result.labels).size == result.n_classes
    with pytest.warns(FutureWarning, match="n_clusters is deprecated; use n_classes"):
        assert result.n_clusters == result.n_classes
    again = autoencoder_cluster(
        baseline_set.volumes, k_range=(2, 4), epochs=2, batch_size=4, pca_components=4,
        device="cpu", random_state=0,
    )  # fmt: skip
    np.testing.assert_array_equal(again.codes, result.codes)
    np.testing.assert_array_equal(again.labels, result.labels)


def test_refuses_bad_options(baseline_set) -> None:
    with pytest.raises(InputError, match="k_range"):
        autoencoder_cluster(baseline_set.volumes, k_range=(5, 2), device="cpu")
    with pytest.raises(InputError, match="epochs"):
        autoencoder_cluster(baseline_set.volumes, epochs=0, device="cpu")
    with pytest.raises(InputError, match="box size"):
        ConvAutoencoder(6)


def test_input_low_pass_is_disca_s_and_encode_reproduces_the_codes(baseline_set) -> None:
    """The baseline sees the data as DISCA does (same filter); encode() filters new data alike."""
    from cryomine.sorting._source import as_source

    options = dict(k_range=(2, 3), epochs=1, batch_size=4, pca_components=4, device="cpu")
    result = autoencoder_cluster(baseline_set.volumes, random_state=0, **options)
    assert (
        result.lowpass_fraction
        == as_source(baseline_set.volumes, lowpass_a="auto").lowpass_fraction
    )
    assert result.lowpass_fraction == pytest.approx(0.5)
    np.testing.assert_allclose(result.encode(baseline_set.volumes), result.codes, atol=1e-5)
    unfiltered = autoencoder_cluster(
        baseline_set.volumes, lowpass_a=None, random_state=0, **options
    )
    assert unfiltered.lowpass_fraction is None
    assert not np.allclose(unfiltered.codes, result.codes, atol=1e-3)
    with pytest.raises(InputError, match="voxel"):
        autoencoder_cluster(baseline_set.volumes, lowpass_a=40.0, random_state=0, **options)
