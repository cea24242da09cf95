"""Pretraining the YOPO trunk (supervised contrastive) and the shipped pretrained trunk."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cryomine.errors import InputError
from cryomine.sorting._persist import write_bundle
from cryomine.sorting._pretrain import (
    PRETRAINED_FORMAT,
    PretrainSettings,
    _batch,
    _catalogue,
    load_pretrained_trunk,
    pretrain_trunk,
    pretrained_path,
    supervised_contrastive_loss,
)
from cryomine.sorting._yopo import YOPO

#: Never trained on (BENCHMARKS.md §6): sorting validation, the picker's unseen proteins, and
#: the sorting tuning structures held out so that tuning measures unseen structures too.
HELD_OUT = {"4v7r", "4cr2", "1qvr", "3cf3", "5gjv", "6drv", "2uv8", "7n4y", "6utj", "1fa2",
            "5mrc", "6v8o", "atp_synthase", "3j9i", "4v94", "4v4r"}  # fmt: skip

TINY = PretrainSettings(
    steps=4, structures_per_batch=2, views=2, voxel_sizes_a=(16.0,), checkpoint_every=1,
    learning_rate=1e-2,
)  # fmt: skip


def test_contrastive_loss_prefers_grouped_features() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    grouped = torch.eye(3)[labels] + 0.01 * torch.randn(
        6, 3, generator=torch.Generator().manual_seed(0)
    )
    mixed = grouped[torch.tensor([0, 2, 4, 1, 3, 5])]
    low = supervised_contrastive_loss(grouped, labels, temperature=0.1)
    high = supervised_contrastive_loss(mixed, labels, temperature=0.1)
    assert float(low) < 0.01 < float(high)
    with pytest.raises(InputError, match="positive"):
        supervised_contrastive_loss(grouped[:3], torch.tensor([0, 1, 2]), temperature=0.1)


def test_pretraining_moves_weights_and_resumes_exactly(tmp_path) -> None:
    torch.manual_seed(0)
    structures = ["1bxn", "3qm1"]
    trunk, record = pretrain_trunk(structures, TINY, device="cpu")
    assert [entry["step"] for entry in record["losses"]] == [1, 2, 3, 4]
    assert record["structures_per_voxel_size"]["16.0"] == sorted(structures)
    untrained = YOPO(width=TINY.width, init_generator=torch.Generator().manual_seed(TINY.seed))
    moved = [
        float(torch.linalg.norm(a.detach() - b.detach()))
        for a, b in zip(trunk.parameters(), untrained.parameters(), strict=True)
    ]
    assert max(moved) > 1e-3

    class Crash(Exception):
        pass

    def crash_after_two(step: int, total: int, loss: float) -> None:
        if step == 2:
            raise Crash

    with pytest.raises(Crash):
        pretrain_trunk(structures, TINY, device="cpu", checkpoint_dir=tmp_path,
                       progress=crash_after_two)  # fmt: skip
    resumed, resumed_record = pretrain_trunk(
        structures, TINY, device="cpu", checkpoint_dir=tmp_path
    )
    assert resumed_record["losses"] == record["losses"]
    for a, b in zip(resumed.state_dict().values(), trunk.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(InputError, match="other settings"):
        pretrain_trunk(structures, PretrainSettings(**{**TINY.json(), "steps": 5,
                       "voxel_sizes_a": (16.0,)}), device="cpu", checkpoint_dir=tmp_path)  # fmt: skip


def test_variants_are_classes_of_their_own_paired_with_their_structure() -> None:
    settings = PretrainSettings(**{**TINY.json(), "variants": 2, "structures_per_batch": 4,
                                   "voxel_sizes_a": (16.0,)})  # fmt: skip
    structures = ["1bxn", "3qm1"]
    catalogue = _catalogue(structures, settings)
    assert catalogue.variant_of == {"1bxn~v0": "1bxn", "1bxn~v1": "1bxn", "3qm1~v0": "3qm1",
                                    "3qm1~v1": "3qm1"}  # fmt: skip
    densities = catalogue.densities[16.0]
    for variant, base in catalogue.variant_of.items():
        kept = np.clip(densities[variant], 0, None).sum() / np.clip(densities[base], 0, None).sum()
        low, high = settings.variant_removed_mass
        assert 1 - high - 0.05 <= kept <= 1 - low + 0.05  # one shell of voxels of slack
        assert np.all(densities[variant][densities[variant] != 0] == densities[base][
            densities[variant] != 0])  # fmt: skip
    _, ids = _batch(catalogue, settings, np.random.default_rng(0))
    names = [catalogue.names[i] for i in np.unique(ids)]
    assert len(names) == 4 and sorted(n.split("~")[0] for n in names) == [
        "1bxn", "1bxn", "3qm1", "3qm1"]  # fmt: skip
    trunk, record = pretrain_trunk(structures, settings, device="cpu", start_from="builtin")
    builtin, _ = load_pretrained_trunk("builtin", width=settings.width)
    conv = next(k for k in builtin if k.endswith("weight") and builtin[k].dim() == 5)
    moved = float(torch.linalg.norm(trunk.state_dict()[conv].cpu() - builtin[conv]))
    assert 0 < moved < 0.5 * float(torch.linalg.norm(builtin[conv]))  # fine-tuned, not restarted
    assert record["variants"] == 4 and record["started_from"] == "builtin"
    assert record["structures"] == structures
    assert record["structures_per_voxel_size"]["16.0"] == structures


def test_pretrained_trunk_files_are_checked(tmp_path) -> None:
    write_bundle(tmp_path / "other", meta={"format": "something"}, tensors={}, arrays={},
                 overwrite=False)  # fmt: skip
    with pytest.raises(InputError, match="not a pretrained YOPO trunk"):
        load_pretrained_trunk(tmp_path / "other", width=0.25)
    with pytest.raises(InputError, match="no such directory"):
        load_pretrained_trunk(tmp_path / "missing", width=0.25)
    with pytest.raises(InputError, match="width 1"):
        load_pretrained_trunk("builtin", width=1.0)
    with pytest.raises(InputError, match=r"width 0\.5"):
        load_pretrained_trunk(_bundle_at_width(tmp_path, 0.5), width=0.25)


def _bundle_at_width(tmp_path, width: float):
    path = tmp_path / f"w{width}"
    write_bundle(path, meta={"format": PRETRAINED_FORMAT, "settings": {"width": width}},
                 tensors={"trunk": YOPO(width=width).state_dict()}, arrays={}, overwrite=False)  # fmt: skip
    return path


def test_shipped_trunk_never_saw_the_evaluation_structures() -> None:
    path = pretrained_path("builtin", 0.25)
    meta = json.loads((path / "state.json").read_text())
    assert meta["format"] == PRETRAINED_FORMAT
    assert HELD_OUT.isdisjoint(meta["structures"])
    assert meta["losses"][-1]["loss"] < meta["losses"][0]["loss"]
    state, _ = load_pretrained_trunk("builtin", width=0.25)
    assert all(np.isfinite(v.numpy()).all() for v in state.values() if v.is_floating_point())
    assert (path / "MODEL_CARD.md").is_file()
