"""Benchmark: how fast does this machine train the networks of the model zoo?

Trains a sample of the default zoo's networks at default settings, one at a time
on one thread (as each worker of ``default_zoo`` does), and reports networks per
minute, seconds per network and CPU seconds per network. Because the machine may
be shared, it also times a fixed reference computation in the same run (forward
passes of the fixed architecture over the digits training set, one thread) and
reports every cost as a multiple of it; that ratio moves much less with load
than the raw times. Finally it estimates the wall time of the full default zoo
with ``--n-jobs`` workers.

Run from the repository root::

    .venv/bin/python benchmarks/bench_zoo.py            # 12 fixed + 3 varied
    .venv/bin/python benchmarks/bench_zoo.py --n-fixed 30 --n-varied 6
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import pandas as pd
import torch

from wdcore.architectures import FIXED_ARCHITECTURE, build_cnn
from wdcore.data import DATASETS, load_dataset
from wdcore.zoo import default_configs, train_network

N_REFERENCE_REPEATS = 5
N_REFERENCE_EPOCHS = 10


def time_reference() -> float:
    """Median time of 10 forward epochs of the fixed network over digits."""
    torch.set_num_threads(1)
    images = torch.from_numpy(np.array(load_dataset("digits").x_train))
    model = build_cnn(FIXED_ARCHITECTURE).eval()
    timings = []
    with torch.no_grad():
        for _ in range(N_REFERENCE_REPEATS):
            start = time.perf_counter()
            for _ in range(N_REFERENCE_EPOCHS):
                for batch in images.split(256):
                    model(batch)
            timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def pick_configs(n_fixed: int, n_varied: int) -> list[dict]:
    """The first networks of the default zoo, balanced over datasets."""
    configs = default_configs()
    fixed = [config for config in configs if config["space"] == "fixed"]
    varied = [config for config in configs if config["space"] == "varied"]
    return fixed[:n_fixed] + varied[:n_varied]


def measure(configs: list[dict]) -> pd.DataFrame:
    """Train each configuration once; one row of timings per network."""
    rows = []
    for config in configs:
        network = train_network(config)
        rows.append(
            {
                "space": config["space"],
                "dataset": config["dataset"],
                "seconds": network.seconds,
                "cpu_seconds": network.cpu_seconds,
            }
        )
    return pd.DataFrame(rows)


def estimate_default_zoo(timings: pd.DataFrame, n_jobs: int, column: str) -> float:
    """Seconds for the full default zoo: mean cost per (space, dataset) x count."""
    counts = pd.DataFrame(default_configs()).groupby(["space", "dataset"]).size()
    means = timings.groupby(["space", "dataset"])[column].mean()
    space_means = timings.groupby("space")[column].mean()
    total = 0.0
    for (space, dataset), count in counts.items():
        mean = means.get((space, dataset), space_means.get(space, means.mean()))
        total += count * mean
    return total / n_jobs


def estimate(timings: pd.DataFrame, n_jobs: int, column: str) -> float:
    """:func:`estimate_default_zoo` in minutes."""
    return estimate_default_zoo(timings, n_jobs, column) / 60


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-fixed", type=int, default=12)
    parser.add_argument("--n-varied", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args(argv)
    for name in DATASETS:
        load_dataset(name)

    reference_before = time_reference()
    timings = measure(pick_configs(args.n_fixed, args.n_varied))
    reference_after = time_reference()
    reference = (reference_before + reference_after) / 2
    timings["reference_units"] = timings.seconds / reference

    fixed = timings[timings.space == "fixed"]
    lines = [
        f"reference (10 forward epochs of the fixed CNN over digits, 1 thread): "
        f"{reference_before:.3f} s before, {reference_after:.3f} s after",
        f"fixed networks: {60 / fixed.seconds.mean():.1f} networks per minute per "
        f"thread, {fixed.seconds.mean():.2f} s each (CPU {fixed.cpu_seconds.mean():.2f}"
        f" s), {fixed.reference_units.mean():.2f} reference units each",
        "per space and dataset (mean over the sample):",
        timings.groupby(["space", "dataset"])
        .agg(
            networks=("seconds", "size"),
            seconds=("seconds", "mean"),
            cpu_seconds=("cpu_seconds", "mean"),
            reference_units=("reference_units", "mean"),
        )
        .round(2)
        .to_string(),
        f"estimated full default zoo ({len(default_configs())} networks) with "
        f"n_jobs={args.n_jobs}: {estimate(timings, args.n_jobs, 'seconds'):.1f} min "
        f"at this run's load, {estimate(timings, args.n_jobs, 'cpu_seconds'):.1f} min"
        " on an idle machine (CPU time; assumes the workers do not slow each other)",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
