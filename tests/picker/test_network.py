"""The picker network: config checks, dense output = window output, save/load round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cryomine.errors import InputError
from cryomine.picker import PickerConfig, PickerNet, load_picker, save_picker


def _model(seed: int = 0, **config: object) -> PickerNet:
    torch.manual_seed(seed)
    model = PickerNet(PickerConfig(**config))  # type: ignore[arg-type]
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("window", [20, 24, 28])
def test_one_window_gives_one_unit_embedding(window: int) -> None:
    model = _model(window=window, embedding_dim=8, channels=(4, 8, 16))
    out = model(torch.randn(3, 1, window, window, window))
    assert out.shape == (3, 8, 1, 1, 1)
    assert torch.allclose(out.norm(dim=1), torch.ones(3, 1, 1, 1), atol=1e-5)
    dense = model(torch.randn(1, 1, window + 8, window + 4, window))
    assert dense.shape == (1, 8, 3, 2, 1)  # native stride 4


def test_bad_configs_are_refused_with_the_value() -> None:
    with pytest.raises(InputError, match="window 22"):
        PickerConfig(window=22)
    with pytest.raises(InputError, match="embedding dimension 1"):
        PickerConfig(embedding_dim=1)


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = _model(window=20, embedding_dim=4, channels=(2, 4, 8))
    save_picker(model, tmp_path / "m", extra={"note": "x"})
    loaded = load_picker(tmp_path / "m")
    x = torch.randn(2, 20, 20, 20)
    with torch.no_grad():
        assert torch.equal(model.embed_windows(x), loaded.embed_windows(x))
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["note"] == "x" and config["architecture"]["window"] == 20


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"config\.json: picker model file not found"):
        load_picker(tmp_path)
    save_picker(_model(window=20, channels=(2, 4, 8)), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["architecture"]["embedding_dim"] = 5
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=r"model\.pt: weights do not fit config\.json"):
        load_picker(tmp_path)
