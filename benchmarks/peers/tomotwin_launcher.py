"""Run a TomoTwin command with numpy 2 and torch ≥ 2.6 (for benchmarks/tomotwin_side_by_side.py).

TomoTwin (tomotwin-cryoet, MPL-2.0) is installed beside cryomine in benchmarks/peers/.venv-tomotwin
(git-ignored) and run as a separate program; none of its code is copied into cryomine. Version
0.9.1.2 trips on three removed or changed APIs; this launcher restores them for the process only,
then calls TomoTwin's own entry point with the arguments it was given:

- ``numpy.Infinity`` (removed in numpy 2): the trainer's initial best loss;
- ``ReduceLROnPlateau(verbose=...)`` (argument removed in torch 2.7): the trainer's scheduler;
- ``torch.load`` defaults to ``weights_only=True`` since torch 2.6; TomoTwin's checkpoints hold
  its configuration dict, so its own files are loaded with ``weights_only=False``.

    benchmarks/peers/.venv-tomotwin/bin/python benchmarks/peers/tomotwin_launcher.py \
        {train,embed,map,locate,pick} ARGS...
"""

import functools
import importlib
import sys

import numpy
import torch

ENTRY_POINTS = {
    "train": "tomotwin.train_main",
    "embed": "tomotwin.embed_main",
    "map": "tomotwin.map_main",
    "locate": "tomotwin.locate_main",
    "pick": "tomotwin.pick_main",
}

numpy.Infinity = numpy.inf  # noqa: NPY201 (restores the removed alias TomoTwin reads)

_plateau_init = torch.optim.lr_scheduler.ReduceLROnPlateau.__init__


@functools.wraps(_plateau_init)
def _plateau_init_without_verbose(self, *args, verbose=None, **kwargs):
    _plateau_init(self, *args, **kwargs)


torch.optim.lr_scheduler.ReduceLROnPlateau.__init__ = _plateau_init_without_verbose

_torch_load = torch.load


@functools.wraps(_torch_load)
def _load_full_checkpoint(*args, **kwargs):
    kwargs.setdefault("weights_only", False)
    return _torch_load(*args, **kwargs)


torch.load = _load_full_checkpoint

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ENTRY_POINTS:
        raise SystemExit(f"usage: tomotwin_launcher.py {{{','.join(ENTRY_POINTS)}}} ARGS...")
    command = sys.argv.pop(1)
    sys.argv[0] = f"tomotwin_{command}.py"
    importlib.import_module(ENTRY_POINTS[command])._main_()
