"""Markdown table of the iteration-0 model choice per family, from ``choose_on_features.py``'s
``logs/fits_*.json`` (every fit: model, K, start, BIC, smallest component, homogeneity).

    python benchmarks/results/disca_ppca/experiments/tabulate_choices.py
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

LOGS = Path(__file__).resolve().parents[1] / "logs"
PPCA = ("spherical", *(f"ppca{q}" for q in range(1, 15)), "full")
FAMILIES = {
    "full, diag, tied, spherical (until now)": ("full", "diag", "tied", "spherical"),
    "PPCA (spherical … full)": PPCA,
    "diag + PPCA": ("diag", *PPCA),
    "full only": ("full",),
}
MIN_SIZE = 17  # d + 1, DISCA's eligibility rule


def main() -> None:
    rows = []
    for path in sorted(LOGS.glob("fits_*.json")):
        name, snr = path.stem.removeprefix("fits_").split("_snr")
        true_k = 5 if name == "tune5" else 3
        by_n: dict[int, list[dict]] = defaultdict(list)
        for fit in json.loads(path.read_text()):
            by_n[fit["n"]].append(fit)
        for n, fits in sorted(by_n.items()):
            cells = []
            for family in FAMILIES.values():
                eligible = [f for f in fits if f["model"] in family and f["smallest"] >= MIN_SIZE]
                best = min(eligible, key=lambda f: f["bic"])
                mark = "" if best["k"] == true_k else " ✗"
                cells.append(f"{best['model']} K {best['k']}{mark}, {best['homogeneity']:.3f}")
            rows.append(f"| {name} | {snr} | {n} | " + " | ".join(cells) + " |")
    print("| set | SNR | N | " + " | ".join(FAMILIES) + " |")
    print("|---|---|---|" + "---|" * len(FAMILIES))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
