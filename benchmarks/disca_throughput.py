"""YOPO throughput: feature extraction and training samples per second, achieved GFLOP/s.

For each width (channel multiplier) times inference (eval mode, no grad) and training (forward,
categorical hinge, backward, NAdam step) on random 24³ batches, counts FLOPs with
``torch.utils.flop_counter.FlopCounterMode`` (multiply-add = 2 FLOPs) and reports the median over
``--repeats`` timed batches after one warm-up batch. Each width runs in a fresh process, so
its peak memory is its own: peak resident set size (CPU; with the process's size before the
network was built, for the difference) or peak allocated GPU memory (CUDA). Writes
``benchmarks/results/disca_throughput.json`` and a Markdown table beside it.

    python benchmarks/disca_throughput.py --widths 1.0 0.5 0.25 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from cryomine._runrecord import machine_description
from cryomine.sorting import YOPO, YOPOHead, categorical_hinge


def _flops(fn: object) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()  # type: ignore[operator]
    return int(counter.get_total_flops())


def _median_seconds(fn: object, repeats: int) -> float:
    fn()  # type: ignore[operator]  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    width: float, *, box: int, batch: int, repeats: int, device: torch.device
) -> dict[str, float]:
    generator = torch.Generator().manual_seed(0)
    trunk = YOPO(width=width, init_generator=generator).to(device)
    head = YOPOHead(10, init_generator=generator).to(device)
    x = torch.randn(batch, 1, box, box, box, generator=generator).to(device)
    if device.type == "cpu":
        trunk = trunk.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    targets = torch.full((batch, 10), 0.1, device=device)
    optimizer = torch.optim.NAdam([*trunk.parameters(), *head.parameters()], lr=1e-5)

    def infer() -> None:
        trunk.eval()
        with torch.inference_mode():
            trunk(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train() -> None:
        trunk.train()
        loss = categorical_hinge(head(trunk(x)), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    infer_flops, train_flops = _flops(infer), _flops(train)
    infer_s, train_s = _median_seconds(infer, repeats), _median_seconds(train, repeats)
    return {
        "width": width,
        "parameters": sum(p.numel() for p in trunk.parameters()),
        "gflop_per_sample_forward": infer_flops / batch / 1e9,
        "inference_samples_per_s": batch / infer_s,
        "inference_gflop_per_s": infer_flops / infer_s / 1e9,
        "training_samples_per_s": batch / train_s,
        "training_gflop_per_s": train_flops / train_s / 1e9,
    }


def measure_in_fresh_process(
    width: float, box: int, batch: int, repeats: int, device_name: str
) -> dict[str, float]:
    """:func:`measure` plus peak memory (MiB); meant to run in a child process of its own."""
    import resource

    def rss_mib() -> float:  # ru_maxrss is in KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    device = torch.device(device_name)
    before = rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    row = measure(width, box=box, batch=batch, repeats=repeats, device=device)
    row["peak_rss_mib"] = rss_mib()
    row["rss_before_network_mib"] = before
    if device.type == "cuda":
        row["peak_gpu_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.5, 0.25])
    parser.add_argument("--box", type=int, default=24, help="box size (voxels)")
    parser.add_argument("--batch", type=int, default=32, help="samples per batch")
    parser.add_argument("--repeats", type=int, default=3, help="timed batches per measurement")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "disca_throughput.json"
    )
    args = parser.parse_args()
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    print(command)
    device = torch.device(args.device)
    rows = []
    spawn = multiprocessing.get_context("spawn")
    for width in args.widths:
        with spawn.Pool(1) as pool:
            row = pool.apply(
                measure_in_fresh_process, (width, args.box, args.batch, args.repeats, args.device)
            )
        rows.append(row)
        print(json.dumps(row), flush=True)
    machine = {
        "cpu": machine_description()["cpu"], "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "device": str(device),
        "load_average_1min": os.getloadavg()[0],
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
    }  # fmt: skip
    result = {"command": command, "box": args.box, "batch": args.batch, "repeats": args.repeats,
              "machine": machine, "rows": rows,
              "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# YOPO throughput ({args.box}³, batch {args.batch}, median of {args.repeats})",
        "",
        f"`{command}` on {machine['cpu']} ({machine['cpu_count']} CPUs, "
        f"{machine['torch_threads']} torch "
        f"threads, device {device}, 1-min load average {machine['load_average_1min']:.1f})",
        "",
        "| width | parameters | GFLOP/sample (fwd) | inference samples/s | inference GFLOP/s "
        "| training samples/s | training GFLOP/s | peak memory (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "peak_gpu_allocated_mib" in r:
            memory = f"{r['peak_gpu_allocated_mib']:.0f} GPU"
        else:
            memory = (
                f"{r['peak_rss_mib']:.0f} RSS "
                f"(+{r['peak_rss_mib'] - r['rss_before_network_mib']:.0f} over the process)"
            )
        lines.append(
            f"| {r['width']} | {r['parameters']:,} | {r['gflop_per_sample_forward']:.2f} "
            f"| {r['inference_samples_per_s']:.1f} | {r['inference_gflop_per_s']:.1f} "
            f"| {r['training_samples_per_s']:.1f} | {r['training_gflop_per_s']:.1f} | {memory} |"
        )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
