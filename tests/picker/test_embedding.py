"""Dense embedding: tiled equals untiled equals window by window; strides; window cutting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryomine.errors import InputError
from cryomine.picker import (
    PickerConfig,
    PickerNet,
    cut_windows,
    embed_tomogram,
    embed_windows,
    normalize_tomogram,
)


@pytest.fixture(scope="module")
def model() -> PickerNet:
    torch.manual_seed(1)
    net = PickerNet(PickerConfig(window=20, embedding_dim=6, channels=(4, 8, 16)))
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture(scope="module")
def tomogram() -> np.ndarray:
    rng = np.random.default_rng(0)
    return normalize_tomogram(rng.normal(size=(21, 30, 37)).astype(np.float32))


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_tiled_equals_untiled_equals_windows(
    model: PickerNet, tomogram: np.ndarray, stride: int
) -> None:
    whole = embed_tomogram(model, tomogram, stride=stride, tile_size=64)
    tiled = embed_tomogram(model, tomogram, stride=stride, tile_size=2)
    expected_shape = (*(-(-n // stride) for n in tomogram.shape), 6)
    assert whole.shape == expected_shape
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    centres = np.argwhere(np.ones(whole.shape[:3], dtype=bool)) * stride
    one_by_one = embed_windows(model, cut_windows(tomogram, centres, 20))
    np.testing.assert_allclose(one_by_one, whole.reshape(-1, 6), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(whole, axis=-1), 1.0, atol=1e-5)


def test_stride_one_matches_windows_on_a_small_volume(model: PickerNet) -> None:
    volume = normalize_tomogram(np.random.default_rng(2).normal(size=(6, 7, 9)).astype(np.float32))
    dense = embed_tomogram(model, volume, stride=1, tile_size=1)
    centres = np.argwhere(np.ones(volume.shape, dtype=bool))
    np.testing.assert_allclose(
        embed_windows(model, cut_windows(volume, centres, 20)), dense.reshape(-1, 6), atol=1e-5
    )


def test_cut_windows_fills_outside_with_zero() -> None:
    volume = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7) + 1
    windows = cut_windows(volume, np.array([[0, 0, 0], [2, 3, 3]]), 4)
    assert windows.shape == (2, 4, 4, 4)
    assert np.all(windows[0, :2] == 0) and windows[0, 2, 2, 2] == volume[0, 0, 0]
    np.testing.assert_array_equal(windows[1], volume[0:4, 1:5, 1:5])


def test_normalize_and_bad_stride(model: PickerNet, tomogram: np.ndarray) -> None:
    volume = np.random.default_rng(3).normal(5.0, 2.0, size=(8, 8, 8)).astype(np.float32)
    dark = normalize_tomogram(volume)
    assert abs(dark.mean()) < 1e-4 and abs(dark.std() - 1) < 1e-4
    np.testing.assert_allclose(normalize_tomogram(volume, contrast="bright"), -dark, atol=1e-6)
    with pytest.raises(InputError, match="stride 3"):
        embed_tomogram(model, tomogram, stride=3)
    with pytest.raises(InputError, match="constant"):
        normalize_tomogram(np.ones((4, 4, 4), np.float32))
