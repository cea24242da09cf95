"""YOPO: shapes, size limits, parameter count, translation invariance, dropout; the hinge loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryomine.errors import InputError
from cryomine.sorting import MIN_BOX_SIZE, YOPO, YOPOHead, categorical_hinge, yopo_channels


def test_channels_and_parameter_count() -> None:
    assert yopo_channels(1.0) == (64, 80, 96, 112, 128, 144, 160, 176, 192, 208)
    assert yopo_channels(0.25) == (16, 20, 24, 28, 32, 36, 40, 44, 48, 52)
    n_parameters = sum(p.numel() for p in YOPO(width=1.0).parameters())
    assert n_parameters == pytest.approx(6.3e6, rel=0.01)
    with pytest.raises(InputError, match="width"):
        yopo_channels(0.0)


@pytest.mark.parametrize("box", [21, 24, 27])
def test_output_shapes(box: int) -> None:
    torch.manual_seed(0)
    trunk = YOPO(width=0.125).eval()
    head = YOPOHead(5)
    with torch.no_grad():
        features = trunk(torch.randn(3, 1, box, box, box))
        assert features.shape == (3, 1024)
        assert head(features).shape == (3, 5)
        assert trunk(torch.randn(2, box, box, box)).shape == (2, 1024)  # channel axis optional


def test_box_smaller_than_21_is_refused() -> None:
    assert MIN_BOX_SIZE == 21
    with pytest.raises(InputError, match="at least 21"):
        YOPO(width=0.125)(torch.randn(2, 1, 20, 20, 20))


def test_initialisation_is_orthogonal_with_zero_bias() -> None:
    trunk = YOPO(width=0.25)
    conv = trunk.blocks[3][0]
    weight = conv.weight.detach().reshape(conv.out_channels, -1)
    np.testing.assert_allclose((weight @ weight.T).numpy(), np.eye(conv.out_channels), atol=1e-5)
    assert torch.count_nonzero(conv.bias) == 0
    assert torch.count_nonzero(trunk.feature.bias) == 0


def _blob(
    box: int, centre: tuple[float, float, float], radii: tuple[float, float, float]
) -> torch.Tensor:
    z, y, x = np.mgrid[:box, :box, :box].astype(np.float32)
    r2 = sum(((g - c) / r) ** 2 for g, c, r in zip((z, y, x), centre, radii, strict=True))
    return torch.from_numpy(np.exp(-r2).astype(np.float32))


def test_features_are_translation_invariant_by_construction() -> None:
    # global max pooling after valid convolutions: an object shifted inside a flat background
    # gives the same feature (a different object does not)
    torch.manual_seed(0)
    trunk = YOPO(width=0.125).eval()
    box = 44
    original = _blob(box, (22, 22, 22), (1.5, 2.0, 2.5))
    shifted = _blob(box, (19, 24, 21), (1.5, 2.0, 2.5))
    other = _blob(box, (22, 22, 22), (2.5, 2.0, 1.5))
    with torch.no_grad():
        f_original, f_shifted, f_other = trunk(torch.stack([original, shifted, other]))
    shift_change = torch.linalg.norm(f_shifted - f_original) / torch.linalg.norm(f_original)
    other_change = torch.linalg.norm(f_other - f_original) / torch.linalg.norm(f_original)
    assert shift_change < 1e-2
    assert other_change > 10 * shift_change


def test_gaussian_dropout_only_in_training_and_reproducible() -> None:
    trunk = YOPO(width=0.125)
    x = torch.randn(4, 1, 21, 21, 21)
    trunk.eval()
    with torch.no_grad():
        np.testing.assert_array_equal(trunk(x).numpy(), trunk(x).numpy())
    trunk.train()
    outputs = []
    for _ in range(2):
        generator = torch.Generator().manual_seed(7)
        trunk.generator = generator
        with torch.no_grad():
            outputs.append(trunk.dropout(x))
    torch.testing.assert_close(outputs[0], outputs[1])
    noise = (outputs[0] / x).flatten()
    assert abs(float(noise.mean()) - 1.0) < 0.05 and abs(float(noise.std()) - 1.0) < 0.05


def test_categorical_hinge_values() -> None:
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    onehot = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    # row 1: 1 + 0.2 - 0.7 = 0.5; row 2: 1 + 0.6 - 0.1 = 1.5
    assert float(categorical_hinge(logits, onehot)) == pytest.approx(1.0, rel=1e-6)
    # soft targets as Keras: pos = Σ y p, neg = max((1 - y) p)
    soft = torch.tensor([[0.8, 0.1, 0.1]])
    p = torch.tensor([0.7, 0.2, 0.1])
    expected = max(0.0, float(((1 - soft[0]) * p).max() - (soft[0] * p).sum() + 1))
    assert float(categorical_hinge(torch.log(p)[None], soft)) == pytest.approx(expected, rel=1e-6)
    # a confident right answer costs less than a confident wrong one, never below zero
    right = categorical_hinge(torch.tensor([[9.0, 0.0, 0.0]]), onehot[:1])
    wrong = categorical_hinge(torch.tensor([[0.0, 9.0, 0.0]]), onehot[:1])
    assert 0.0 <= float(right) < float(wrong)


def test_head_former_n_clusters_name_warns() -> None:
    head = YOPOHead(4, feature_dim=8)
    assert head.n_classes == 4
    with pytest.warns(FutureWarning, match="n_clusters is deprecated; use n_classes"):
        assert head.n_clusters == 4
    with pytest.warns(FutureWarning, match="n_clusters is deprecated; use n_classes"):
        old = YOPOHead(n_clusters=3, feature_dim=8)
    assert old.n_classes == 3 and old.linear.out_features == 3
