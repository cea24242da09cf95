"""JSON run records written next to every output, so a result can be reproduced and audited."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryomine.io._atomic import atomic_write_text

__all__ = ["RunRecord", "machine_description", "recording_run"]

RUN_RECORD_NAME = "run.json"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_description() -> dict[str, Any]:
    """The machine a result was obtained on: Python, platform, CPU model and count, torch, GPU."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "gpu": gpu,
    }


def _inputs_description(paths: list[Path]) -> list[dict[str, Any]]:
    described = []
    for path in paths:
        entry: dict[str, Any] = {"path": str(path)}
        if path.is_file():
            entry["size_bytes"] = path.stat().st_size
        described.append(entry)
    return described


@dataclass
class RunRecord:
    """What one run did: version, command, parameters, seed, inputs, timings (seconds)."""

    command: str
    parameters: dict[str, Any]
    seed: int | None = None
    inputs: list[Path] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Time a step; its wall-clock seconds are stored under ``timings_s[step]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings_s[step] = self.timings_s.get(step, 0.0) + time.perf_counter() - start

    def to_dict(self) -> dict[str, Any]:
        from cryomine import __version__

        return _jsonable(
            {
                "cryomine_version": __version__,
                "command": self.command,
                "argv": sys.argv,
                "parameters": self.parameters,
                "seed": self.seed,
                "inputs": _inputs_description(self.inputs),
                "timings_s": self.timings_s,
                "results": self.results,
                "machine": machine_description(),
                "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )

    def write(self, directory: Path, name: str = RUN_RECORD_NAME) -> Path:
        """Write the record as ``directory/name`` (atomically) and return its path."""
        path = Path(directory) / name
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path


@contextmanager
def recording_run(
    directory: Path,
    command: str,
    parameters: dict[str, Any],
    *,
    seed: int | None = None,
    inputs: list[Path] | None = None,
    name: str = RUN_RECORD_NAME,
) -> Iterator[RunRecord]:
    """Yield a :class:`RunRecord`; on success it is written to ``directory/name``.

    A run that raises writes no record, so a record always describes finished outputs.
    """
    record = RunRecord(command=command, parameters=parameters, seed=seed, inputs=inputs or [])
    start = time.perf_counter()
    yield record
    record.timings_s["total"] = time.perf_counter() - start
    record.write(directory, name)
