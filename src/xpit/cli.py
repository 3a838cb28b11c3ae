"""The ``xpit`` command (also ``python -m xpit``).

``xpit info [--json]`` reports xpit's version, each backend with its version,
whether it is usable here and why, its devices, and the backend selected for
host data with where that choice came from. Every field holds a value or the
error that stopped it, like ``cupy.show_config()``.
"""

from __future__ import annotations

import argparse
import json
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
            _field(lambda n=name: _installed_version(n)),
            "usable": usable,
            "reason": reason,
            "devices": _field(rec.devices) if usable else [],
        }
    selected = _field(lambda: vars(xpit.get_backend()))
    return {
        "xpit": xpit.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xpit`` command with ``argv`` (default: ``sys.argv[1:]``); return its exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
