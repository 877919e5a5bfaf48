"""Benchmark: how fast is the MI-WD descriptor compared with reading the weights once?

Part 1 describes one 25-million-weight vector (the size of a ResNet-50) and times,
in the same run, a single ``numpy.sum`` over the same float32 array: the cheapest
possible pass over the data. Each descriptor timing is reported as a multiple of
that pass (best and median wall time, and CPU time summed over threads), which
moves much less with machine load than raw times do. The target is at most 5x in
wall time for a descriptor with a given (shared) bin range. On a busy machine the
descriptor's worker threads compete for cores, so compare the best ratio and the
CPU ratio.

Part 2 describes every snapshot of the fixed-architecture part of the default zoo
in one vectorized call (or, with ``--synthetic`` or when no trained zoo is found,
a stand-in of the same size: 300 models x 20 snapshots x 42,666 weights).

Run from the repository root::

    .venv/bin/python benchmarks/bench_descriptors.py
    .venv/bin/python benchmarks/bench_descriptors.py --synthetic --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from wdcore.architectures import FIXED_ARCHITECTURE, build_cnn
from wdcore.descriptors import default_value_range, layer_sizes, mi_wd

RESNET50_SIZE = 25_000_000
STAND_IN = {"n_models": 300, "n_snapshots": 20}


def time_call(function, repeats: int) -> tuple[float, float, float]:
    """Best and median wall time and median CPU time (all threads) of a call."""
    timings, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        function()
        timings.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return min(timings), statistics.median(timings), statistics.median(cpu_times)


def make_resnet_like(n_weights: int) -> tuple[np.ndarray, np.ndarray]:
    """A float32 vector with per-layer scales, and its layer sizes (~160 layers)."""
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 400_000, 160)  # (n_layers,)
    sizes = np.maximum(sizes * n_weights // sizes.sum(), 1)  # (n_layers,)
    sizes[-1] += n_weights - sizes.sum()
    scales = np.repeat(rng.uniform(0.01, 0.2, len(sizes)), sizes)  # (n_weights,)
    weights = rng.standard_normal(n_weights, dtype=np.float32)  # (n_weights,)
    weights *= scales.astype(np.float32)
    return weights, sizes


def bench_single_vector(n_weights: int, size: tuple[int, int], repeats: int) -> list:
    """Time descriptors of one long vector against one numpy.sum pass."""
    weights, sizes = make_resnet_like(n_weights)
    radius = default_value_range(weights)
    cases = {
        "numpy.sum (one pass)": lambda: np.sum(weights),
        "mi_wd, given range": lambda: mi_wd(weights, size=size, value_range=radius),
        "mi_wd, default range": lambda: mi_wd(weights, size=size),
        "default_value_range": lambda: default_value_range(weights),
        "mi_wd layer-exact, given range": lambda: mi_wd(
            weights, size=size, value_range=radius, windows="layer", layer_sizes=sizes
        ),
    }
    rows = []
    for name, function in cases.items():
        function()  # warm up (allocations, thread pools, caches)
        best, median, cpu = time_call(function, repeats)
        rows.append(
            {
                "case": name,
                "best_ms": 1e3 * best,
                "median_ms": 1e3 * median,
                "cpu_ms": 1e3 * cpu,
            }
        )
    reference = rows[0]
    for row in rows:
        row["best_ratio"] = row["best_ms"] / reference["best_ms"]
        row["median_ratio"] = row["median_ms"] / reference["median_ms"]
        row["cpu_ratio"] = row["cpu_ms"] / reference["cpu_ms"]
    return rows


def load_zoo_snapshots(zoo_dir: str) -> np.ndarray | None:
    """All snapshots of the default zoo's fixed models, or None if not trained."""
    from wdcore.zoo import load_zoo

    directory = Path(zoo_dir) / "full"
    if not (directory / "index.json").exists():
        return None
    zoo = load_zoo(directory)
    fixed = zoo.index.model_id[zoo.index.space == "fixed"].tolist()
    if not fixed:
        return None
    return np.concatenate(
        [
            zoo.weight_matrix(snapshot=snapshot, model_ids=fixed)
            for snapshot in range(zoo.n_snapshots)
        ]
    )  # (n_models * n_snapshots, n_weights)


def bench_zoo(zoo_dir: str, synthetic: bool, size: tuple[int, int], repeats: int):
    """Time describing every snapshot of the zoo (or its stand-in) in one call."""
    matrix = None if synthetic else load_zoo_snapshots(zoo_dir)
    source = "default zoo (fixed models, all snapshots)"
    if matrix is None:
        n_rows = STAND_IN["n_models"] * STAND_IN["n_snapshots"]
        n_weights = int(sum(layer_sizes(build_cnn(FIXED_ARCHITECTURE))))
        rng = np.random.default_rng(1)
        matrix = 0.05 * rng.standard_normal((n_rows, n_weights), dtype=np.float32)
        source = f"synthetic stand-in {n_rows} x {n_weights}"
    sizes = layer_sizes(build_cnn(FIXED_ARCHITECTURE))
    radius = float(np.max(default_value_range(matrix[:: max(1, len(matrix) // 50)])))
    cases = {
        "numpy.sum (one pass)": lambda: np.sum(matrix),
        "contiguous, shared range": lambda: mi_wd(
            matrix, size=size, value_range=radius
        ),
        "contiguous, per-model default range": lambda: mi_wd(matrix, size=size),
        "layer-exact, shared range": lambda: mi_wd(
            matrix, size=size, value_range=radius, windows="layer", layer_sizes=sizes
        ),
    }
    rows = []
    for name, function in cases.items():
        best, median, cpu = time_call(function, repeats)
        rows.append(
            {
                "case": name,
                "best_s": best,
                "median_s": median,
                "cpu_s": cpu,
                "us_per_descriptor": 1e6 * best / len(matrix),
            }
        )
    return source, matrix.shape, rows


def main(argv: list[str] | None = None) -> int:
    """Run both parts and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-weights", type=int, default=RESNET50_SIZE)
    parser.add_argument("--size", type=int, nargs=2, default=(32, 32))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--zoo-dir", default="_build/zoo")
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="use the synthetic zoo stand-in even if a zoo exists",
    )
    parser.add_argument("--out", default=None, help="optional CSV for part 1")
    arguments = parser.parse_args(argv)
    size = tuple(arguments.size)

    print(f"torch threads: {torch.get_num_threads()}; size {size[0]} x {size[1]}")
    rows = bench_single_vector(arguments.n_weights, size, arguments.repeats)
    table = pd.DataFrame(rows).set_index("case")
    print(f"\nPart 1: one vector of {arguments.n_weights:,} float32 weights")
    print(table.round(2).to_string())
    if arguments.out:
        table.to_csv(arguments.out)

    source, shape, rows = bench_zoo(
        arguments.zoo_dir, arguments.synthetic, size, max(1, arguments.repeats // 3)
    )
    print(f"\nPart 2: {source}, matrix {shape[0]} x {shape[1]}")
    print(pd.DataFrame(rows).set_index("case").round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
