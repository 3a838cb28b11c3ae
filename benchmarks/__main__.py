"""``python -m benchmarks``: the full speed table, the accuracy table and the memory figures.

The timing code is :mod:`xpit.bench`, the same that ``xpit bench`` runs; this
adds the larger sizes, more repeats and the memory measurements.

    python -m benchmarks                    # everything, JSON and PNG in benchmarks/results/
    python -m benchmarks --sizes 1e7        # one size
"""

from __future__ import annotations

import argparse
import os

from benchmarks import memory
from xpit import bench


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--sizes", default=None, help="comma-separated, default 1e3..1e8")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"))
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()
    sizes = ([int(float(s)) for s in args.sizes.split(",")] if args.sizes
             else list(bench.FULL_SIZES))
    usable, _ = bench.xpit._registry.probe("cupy")
    rows = bench.run_timings(["numpy", "cupy"] if usable else ["numpy"], sizes=sizes,
                             repeats=9)
    print(bench.format_table(rows))
    accuracy = bench.run_accuracy()
    print()
    print(bench.format_accuracy(accuracy))
    os.makedirs(args.out, exist_ok=True)
    bench.write_json(os.path.join(args.out, "bench.json"), rows, accuracy)
    bench.plot(rows, os.path.join(args.out, "bench.png"))
    if not args.no_memory:
        print()
        memory.main()


if __name__ == "__main__":
    main()
