"""The ``xpit`` command (also ``python -m xpit``).

``xpit info [--json]`` reports xpit's version, each backend with its version,
whether it is usable here and why, its devices, and the backend selected for
host data with where that choice came from. Every field holds a value or the
error that stopped it, like ``cupy.show_config()``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

# Array libraries xpit computes by namespace detection, with no backend record;
# their versions are read from package metadata, without importing them.
_OTHER_LIBRARIES = ("torch", "jax", "dask", "array-api-strict")


def _field(get: Callable[[], Any]) -> Any:
    try:
        return get()
    except Exception as exc:  # a report shows the error instead of stopping
        return f"error: {exc!r}"


def collect_info() -> dict[str, Any]:
    """Everything ``xpit info`` reports, as a JSON-ready dictionary."""
    import xpit
    from xpit import _registry

    backends = {}
    for name in _registry.names():
        rec = _registry.get(name)
        usable, reason = _registry.probe(name)
        backends[name] = {
            "version": _field(rec.version) if usable or name == "numpy" else
            _field(functools.partial(_installed_version, name)),
            "usable": usable,
            "reason": reason,
            "devices": _field(rec.devices) if usable else [],
        }
    selected = _field(lambda: vars(xpit.get_backend()))
    from xpit._backends import numpy as numpy_backend

    return {
        "xpit": xpit.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy_kernels": _field(lambda: numpy_backend.compiled()[1]),
        "backends": backends,
        "selected": selected,
        "other_array_libraries": {lib: _installed_version(lib) for lib in _OTHER_LIBRARIES},
    }


def _installed_version(name: str) -> str | None:
    """The installed version of a distribution (CuPy under any of its wheel names), or None."""
    candidates = [name]
    if name == "cupy":
        candidates = [d.metadata["Name"] for d in metadata.distributions()
                      if (d.metadata["Name"] or "").lower().startswith("cupy")]
    for dist in candidates:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _print_info(info: dict[str, Any]) -> None:
    print(f"xpit {info['xpit']} (Python {info['python']}, {info['platform']})")
    print(f"NumPy arrays computed by: {info['numpy_kernels']}")
    print("backends:")
    for name, b in info["backends"].items():
        state = "usable" if b["usable"] else "not usable"
        version = b["version"] or "not installed"
        devices = ", ".join(b["devices"]) if isinstance(b["devices"], list) else b["devices"]
        print(f"  {name:<6} {version:<12} {state}: {b['reason']}")
        if devices:
            print(f"         devices: {devices}")
    sel = info["selected"]
    if isinstance(sel, dict):
        line = f"{sel['name']} (requested {sel['requested']!r} by {sel['source']}"
        line += ", strict)" if sel["strict"] else ")"
        print(f"host data computed by: {line}")
    else:
        print(f"host data computed by: {sel}")
    others = ", ".join(f"{lib} {v}" for lib, v in info["other_array_libraries"].items() if v)
    print(f"other array libraries (computed in their own namespace): {others or 'none installed'}")


def _cmd_info(args: argparse.Namespace) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_info(info)
    return 0


def _cmd_apply(args: argparse.Namespace) -> int:
    import warnings

    from xpit import batch

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            batch.apply_file(args.func, args.src, args.dst, chunk_size=args.chunk_size,
                             backend=args.backend, progress=args.progress,
                             overwrite=args.force, workers=args.workers)
    except KeyboardInterrupt:
        print(f"xpit apply: interrupted; {args.dst} was not written", file=sys.stderr)
        return 130
    except FileExistsError:
        print(f"xpit apply: error: {args.dst} already exists; use --force to replace it",
              file=sys.stderr)
        return 1
    except (OSError, ValueError, TypeError, ImportError, RuntimeError) as exc:
        message = str(exc).removeprefix("xpit.batch.apply_file: ")
        print(f"xpit apply: error: {message}", file=sys.stderr)
        return 1
    finally:
        for warning in caught:
            print(f"xpit apply: warning: {warning.message}", file=sys.stderr)
    return 0


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(float(part)) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 1e3,1e7, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return sizes


def _cmd_bench(args: argparse.Namespace) -> int:
    from xpit import _registry, bench

    usable, reason = _registry.probe("cupy")
    if args.backend == "cupy" and not usable:
        print(f"xpit bench: error: CuPy is not usable here: {reason}", file=sys.stderr)
        return 1
    if args.backend == "torch" and (status := bench.peer_status("torch")) is not None:
        print(f"xpit bench: error: PyTorch is {status}", file=sys.stderr)
        return 1
    has_torch = bench.peer_status("torch") is None
    backends = {"numpy": ["numpy"], "cupy": ["cupy"], "torch": ["torch"],
                "all": ["numpy"] + ["torch"] * has_torch + ["cupy"] * usable}[args.backend]
    sizes = args.sizes or (bench.FULL_SIZES if args.full else bench.QUICK_SIZES)
    rows = bench.run_timings(backends, args.functions, args.dtypes, sizes,
                             repeats=args.repeats or (9 if args.full else 5),
                             progress=args.progress)
    m = bench.machine()
    print(f"xpit {m['versions']['xpit']} on {m['cpu']} ({m['cores']} cores), GPU: {m['gpu']}")
    print(f"NumPy arrays computed by: {m['numpy_kernels']}")
    print("median of interleaved repeats; ratios are times (lower is better) from this run\n")
    print(bench.format_table(rows))
    accuracy = None
    if args.accuracy:
        try:
            accuracy = bench.run_accuracy(args.functions, args.dtypes)
        except ImportError as exc:
            print(f"xpit bench: error: --accuracy needs mpmath ({exc}); install it with "
                  "pip install 'xpit[bench]'", file=sys.stderr)
            return 1
        print("\naccuracy against mpmath (128 bits), ULP of the result's dtype\n")
        print(bench.format_accuracy(accuracy))
    if args.json:
        bench.write_json(args.json, rows, accuracy)
        print(f"\nwrote {args.json}")
    if args.plot:
        try:
            bench.plot(rows, args.plot)
        except ImportError as exc:
            print(f"xpit bench: error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.plot}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from xpit import plot

    path = args.output or f"{args.figure}.png"
    try:
        plot.save(args.figure, path)
    except (ImportError, OSError, ValueError) as exc:
        print(f"xpit plot: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xpit`` command."""
    import xpit

    parser = argparse.ArgumentParser(prog="xpit", description="The logistic (sigmoid) family "
                                     "on any array-API backend.")
    parser.add_argument("--version", action="version", version=f"xpit {xpit.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = sub.add_parser("info", help="versions, backends, devices and the selected backend")
    info.add_argument("--json", action="store_true", help="print the report as JSON")
    info.set_defaults(run=_cmd_info)

    from xpit.batch import FUNCTIONS

    apply = sub.add_parser("apply", help="apply a function to a .npy file, in bounded memory",
                           description="Apply FUNC to the .npy file SRC and write DST, reading "
                           "in chunks (files larger than RAM work). DST appears only when "
                           "complete.")
    apply.add_argument("func", choices=FUNCTIONS, metavar="FUNC",
                       help=f"one of: {', '.join(FUNCTIONS)}")
    apply.add_argument("src", help="input .npy file")
    apply.add_argument("dst", help="output .npy file")
    apply.add_argument("--backend", help="numpy, cupy or auto (default: XPIT_BACKEND, else "
                       "numpy)")
    apply.add_argument("--chunk-size", type=int, metavar="N", help="elements read at a time")
    apply.add_argument("--workers", type=int, metavar="N", help="CPU threads (default: all "
                       "usable cores)")
    apply.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="show a progress bar (default: when stderr is a terminal)")
    apply.add_argument("--force", action="store_true", help="replace DST if it exists")
    apply.set_defaults(run=_cmd_apply)

    from xpit.bench import DTYPES
    from xpit.bench import FUNCTIONS as BENCH_FUNCTIONS

    bench = sub.add_parser("bench", help="time xpit against its peers and a memory copy",
                           description="Time xpit, its peers (NumPy formulas, SciPy, PyTorch, "
                           "CuPy) and a copy of the same bytes, interleaved in one process; "
                           "print ns per element, GB/s and ratios.")
    bench.add_argument("--backend", choices=("all", "numpy", "torch", "cupy"), default="all",
                       help="numpy: NumPy arrays; torch: PyTorch CPU tensors, forward and "
                       "forward+backward; cupy: CuPy arrays. Default: each one usable here")
    speed = bench.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true",
                       help="sizes 1e3, 1e5, 1e7; a few minutes (the default)")
    speed.add_argument("--full", action="store_true", help="sizes 1e3 to 1e8, more repeats")
    bench.add_argument("--sizes", type=_sizes, help="comma-separated sizes, e.g. 1e3,1e6,1e8 "
                       "(capped by free memory)")
    bench.add_argument("--functions", nargs="+", choices=BENCH_FUNCTIONS,
                       default=list(BENCH_FUNCTIONS))
    bench.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    bench.add_argument("--repeats", type=int, help="timed repeats per case (default 5)")
    bench.add_argument("--accuracy", action="store_true",
                       help="also measure max and mean ULP error against mpmath")
    bench.add_argument("--json", metavar="PATH", help="write every figure and the machine")
    bench.add_argument("--plot", metavar="PATH", help="draw throughput against size (PNG)")
    bench.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="show a progress bar (default: when stderr is a terminal)")
    bench.set_defaults(run=_cmd_bench)

    plot = sub.add_parser("plot", help="draw a figure (needs matplotlib: xpit[plot])",
                          description="Draw the sigmoid and its derivative, the family, or "
                          "the vanishing gradient through a deep sigmoid network.")
    plot.add_argument("figure", choices=("sigmoid", "family", "vanishing-gradient"))
    plot.add_argument("-o", "--output", metavar="PATH",
                      help="where to write it (PNG, SVG or PDF; default FIGURE.png)")
    plot.set_defaults(run=_cmd_plot)
    return parser


def _reader_gone() -> bool:
    """Whether standard output is a pipe whose reading end is closed."""
    try:
        import select

        poll = select.poll()
        poll.register(sys.stdout.fileno(), 0)  # no events asked: errors and hang-ups only
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() (Windows) or no stdout
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xpit`` command with ``argv`` (default: ``sys.argv[1:]``); return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        if not _reader_gone():
            raise  # a broken pipe elsewhere (a FIFO given as a file) is a real error
        # The reader of our output went away (xpit info | head -3): exit quietly. Point
        # stdout at devnull so that Python's flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + 13  # as a program killed by SIGPIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
