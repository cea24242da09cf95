import json

import pytest

from cryomine import __version__
from cryomine._runrecord import recording_run


def test_run_record_holds_version_parameters_seed_and_timings(tmp_path):
    with recording_run(
        tmp_path, "simulate subtomograms", {"snr": 0.1, "out": tmp_path}, seed=7
    ) as record:
        with record.timed("work"):
            pass
        record.results["n_particles"] = 3
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["cryomine_version"] == __version__
    assert data["command"] == "simulate subtomograms"
    assert data["parameters"] == {"snr": 0.1, "out": str(tmp_path)}
    assert data["seed"] == 7
    assert set(data["timings_s"]) == {"work", "total"}
    assert data["results"] == {"n_particles": 3}


def test_failed_run_writes_no_record(tmp_path):
    with pytest.raises(RuntimeError), recording_run(tmp_path, "x", {}):
        raise RuntimeError("boom")
    assert not (tmp_path / "run.json").exists()
