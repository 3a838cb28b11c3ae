"""Pages measured while the documentation is built, by xpit's own measuring code.

``.. xpit-accuracy::`` draws each function's error in ULP against x, for xpit and its peers,
from :func:`xpit.bench.accuracy_errors` (the points and peers of ``xpit bench --accuracy``),
and tabulates the largest and mean error of the same measurement.

``.. xpit-run:: COMMAND`` runs a shell command (or, with content, a Python script) in the
documentation's environment and shows it with its output, as it ran on the machine that built
the pages.

``.. xpit-bench:: ARGUMENTS`` runs ``xpit bench ARGUMENTS`` (the command-line entry point
itself, with ``--json`` and ``--plot`` added) and shows its tables and figure, stamped with
the machine it ran on and the command that reproduces it.

Nothing here measures anything itself: it draws and tabulates what xpit returns.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

logger = logging.getLogger(__name__)

# One colour per kind of line, the same on every panel (as xpit bench's own plot does).
_COLOURS = {"xpit": "C0", "textbook": "C2", "scipy": "C3", "torch": "C1"}
_OTHERS = ("C4", "C5", "C6", "C8", "C9")
_FLOOR, _CEILING = 1e-3, 1e17  # exact results, and results that are infinitely wrong


def _colour(name: str, others: Any) -> str:
    if name == "xpit":
        return _COLOURS["xpit"]
    for key, colour in _COLOURS.items():
        if key != "xpit" and key in name:
            return colour
    return next(others)


def _list_table(header: list[str], rows: list[list[str]], widths: str = "auto") -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return [*lines, ""]


def _ulp(value: float) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:.3g}" if value < 1e4 else f"{value:.1e}"


class _Measured(SphinxDirective):
    def _figure_path(self, name: str) -> tuple[Path, str]:
        """Where a figure is written (in the source tree, ignored by git) and its URI."""
        folder = Path(self.env.srcdir) / "generated" / "measured"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name, f"/generated/measured/{name}"

    def _parse(self, lines: list[str]) -> list[nodes.Node]:
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source=self.get_source_info()[0]),
                                 node)
        return node.children


class AccuracyDirective(_Measured):
    """Error in ULP against x, per function and dtype, and the table of the same errors."""

    option_spec: ClassVar[dict[str, Any]] = {
        "points": directives.positive_int, "functions": directives.unchanged,
        "dtypes": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        from xpit import bench

        points = self.options.get("points", 2000)
        functions = self.options.get("functions", " ".join(
            f for f in bench.FUNCTIONS if f != "logdiffexp")).split()
        dtypes = self.options.get("dtypes", " ".join(bench.DTYPES)).split()
        start = time.perf_counter()
        lines: list[str] = []
        for fn in functions:
            fig, axes = plt.subplots(1, len(dtypes), figsize=(6.2 * len(dtypes), 3.9),
                                     squeeze=False, sharey=True)
            rows = []
            for ax, dtype in zip(axes.flat, dtypes, strict=True):
                x, errors = bench.accuracy_errors(fn, dtype, points)
                log_space = fn in bench.LOG_SPACE
                if log_space:  # every scale of |x| on a log axis, inside the domain only
                    inside = x >= 0 if fn == "logexpm1" else x <= 0
                    shown_x = np.abs(x)
                    keep = np.isfinite(x) & inside & (shown_x > 0)
                else:  # the real line out to +-1000; the +-1e300 points are in the table only
                    shown_x = x
                    keep = np.isfinite(x) & (np.abs(x) <= 1e3)
                others = iter(_OTHERS)
                # xpit last, so that its points lie on top of its peers'
                for name in [*(n for n in errors if n != "xpit"), "xpit"]:
                    err = errors[name]
                    rows.append([f"``{name}``", dtype, _ulp(float(err.max())),
                                 _ulp(float(err[np.isfinite(err)].mean()))
                                 if np.isfinite(err).any() else "inf"])
                    shown = np.clip(np.where(np.isfinite(err), err, _CEILING), _FLOOR, _CEILING)
                    ax.scatter(shown_x[keep], shown[keep], s=4, alpha=0.5, lw=0,
                               color=_colour(name, others), label=name, rasterized=True)
                if log_space:
                    ax.set_xscale("log")  # explicit limits: autoscaling overflows at 1e308
                    lo, hi = (float(np.log10(v)) for v in (shown_x[keep].min(),
                                                            shown_x[keep].max()))
                    first, last = int(max(np.floor(lo), -323)), int(min(np.ceil(hi), 308))
                    ax.set_xlim(10.0 ** first, 10.0 ** last)
                    # fixed ticks: the default locator reaches past 1e308 on this axis
                    step = max(1, int(np.ceil((last - first) / 6 / 10)) * 10)
                    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(
                        [10.0 ** k for k in range(first, last + 1) if k % step == 0]))
                    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
                    ax.set_xlabel("y (log scale)" if fn == "logexpm1" else "|x| (log scale)")
                else:
                    ax.set_xscale("symlog", linthresh=1.0)
                    ax.set_xlim(-1e3, 1e3)
                    ax.set_xlabel("x (symmetric log scale: linear on [-1, 1])")
                ax.set_yscale("log")
                ax.set_ylim(_FLOOR / 2, _CEILING * 5)
                ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
                ax.set_title(f"{fn}, {dtype} ({x.size} points)")
                ax.grid(True, which="major", alpha=0.3)
            axes.flat[0].set_ylabel("error in ULP (log scale)")
            handles, labels = axes.flat[0].get_legend_handles_labels()
            # xpit (drawn last) first in the legend
            legend = fig.legend(handles[::-1], labels[::-1], loc="outside right upper",
                                fontsize="small", markerscale=3, frameon=False)
            for handle in legend.legend_handles:
                handle.set_alpha(1)
            fig.set_layout_engine("constrained")
            path, uri = self._figure_path(f"accuracy_{fn}.png")
            with np.errstate(over="ignore"):  # the symlog axis' transform of x near 1e308
                fig.savefig(path, dpi=96)
            plt.close(fig)
            rows.sort(key=lambda r: (r[1], r[0] != "``xpit``"))
            lines += [fn, "-" * len(fn), "",
                      f":func:`xpit.{fn}` against its peers on the same points.", "",
                      f".. figure:: {uri}",
                      f"   :alt: error in ULP against x of {fn} for xpit and its peers, "
                      f"{' and '.join(dtypes)}", "",
                      f"   Error in ULP of {fn} at each point: the dashed line is 1 ULP; "
                      f"points at the bottom are exact ({_FLOOR:g} stands for 0), points at "
                      "the top are infinitely wrong (a missed 0, inf or NaN).", "",
                      *_list_table(["implementation", "dtype", "max ULP", "mean ULP"], rows,
                                   "40 20 20 20")]
        logger.info("xpit-accuracy: %d functions in %.1f s", len(functions),
                    time.perf_counter() - start)
        return self._parse(lines)


class ContractDirective(_Measured):
    """The accuracy contract, as ``tests/test_accuracy.py`` states and checks it."""

    def run(self) -> list[nodes.Node]:
        import importlib.util

        path = Path(self.env.srcdir).parent / "tests" / "test_accuracy.py"
        self.env.note_dependency(str(path))
        spec = importlib.util.spec_from_file_location("_xpit_docs_test_accuracy", path)
        tests = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tests)
        paths = [("compiled", tests.CONTRACT), ("array API", tests.REFERENCE_CONTRACT),
                 ("JAX", tests.JAX_CONTRACT)]
        dtypes = ("float64", "float32")
        header = ["function", *(f"{name}, {d}" for name, _ in paths for d in dtypes)]
        functions = dict.fromkeys(fn for fn, _ in tests.CONTRACT)
        rows = [[f":func:`xpit.{fn}`",
                 *(f"{bounds[fn, d]:g}" for _, bounds in paths for d in dtypes)]
                for fn in functions]
        return self._parse(_list_table(header, rows))


class TestsDirective(_Measured):
    """Each file of ``tests/`` with the first paragraph of its docstring."""

    def run(self) -> list[nodes.Node]:
        import ast

        folder = Path(self.env.srcdir).parent / "tests"
        lines: list[str] = []
        for path in sorted(folder.glob("*.py")):
            self.env.note_dependency(str(path))
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            summary = " ".join(doc.split("\n\n")[0].split())
            lines += [f"``tests/{path.name}``", f"   {summary}", ""]
        return self._parse(lines)


class BenchDirective(_Measured):
    """Run ``xpit bench`` with the given arguments; show its tables, figure and machine."""

    required_arguments = 1
    final_argument_whitespace = True

    def run(self) -> list[nodes.Node]:
        from xpit.cli import main

        args = shlex.split(self.arguments[0])
        json_path, _ = self._figure_path("bench.json")
        png_path, png_uri = self._figure_path("bench.png")
        stdout = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(stdout):
            code = main(["bench", *args, "--no-progress", "--json", str(json_path),
                         "--plot", str(png_path)])
        if code != 0:
            raise self.error(f"xpit bench {' '.join(args)} exited with {code}:\n"
                             f"{stdout.getvalue()}")
        seconds = time.perf_counter() - start
        logger.info("xpit-bench: %.1f s", seconds)
        data = json.loads(json_path.read_text())
        m = data["machine"]
        versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items()
                             if not str(v).startswith(("not installed", "failed")))
        lines = [
            f"Measured on **{m['cpu']}**, {m['cores']} usable cores "
            f"({m['platform']}), on {datetime.date.today().isoformat()}, while this page was "
            f"built (the run took {seconds:.0f} s). NumPy arrays computed by: "
            f"{m['numpy_kernels']}. GPU: {m['gpu']}. Versions: {versions}.", "",
            "Reproduce it with:", "",
            ".. code-block:: sh", "",
            f"   xpit bench {shlex.join(args)}", "",
        ]
        for module, status in data["not_measured"].items():
            lines += [f"Not measured: {module}: {status}", ""]
        timings = data["timings"]
        cases = sorted({(t["dtype"], t["size"]) for t in timings},
                       key=lambda c: (c[0], c[1]))
        for backend in dict.fromkeys(t["backend"] for t in timings):
            for fn in dict.fromkeys(t["function"] for t in timings if t["backend"] == backend):
                mine = [t for t in timings if (t["backend"], t["function"]) == (backend, fn)]
                here = [c for c in cases if any((t["dtype"], t["size"]) == c for t in mine)]
                impls = list(dict.fromkeys(t["impl"] for t in mine))
                largest = {d: max(s for dd, s in here if dd == d) for d, _ in here}
                header = ["implementation", *(f"{d} {s:.0e}" for d, s in here),
                          *(f"x copy, {d} {largest[d]:.0e}" for d in largest)]
                rows = []
                for impl in impls:
                    by_case = {(t["dtype"], t["size"]): t for t in mine if t["impl"] == impl}
                    row = [f"``{impl}``"]
                    row += [f"{by_case[c]['ns_per_element']:.3g}" if c in by_case else "-"
                            for c in here]
                    row += [f"{by_case[(d, s)]['vs_copy']:.2f}"
                            if (d, s) in by_case and by_case[(d, s)]["vs_copy"] else "-"
                            for d, s in largest.items()]
                    rows.append(row)
                title = f"{fn} ({backend})"
                lines += [title, "~" * len(title), "",
                          "Nanoseconds per element (lower is better), and time relative to a "
                          "copy of the same bytes at the largest size:", "",
                          *_list_table(header, rows)]
        lines += [".. rubric:: Throughput against size", "",
                  f".. figure:: {png_uri}",
                  "   :alt: throughput in GB/s against the number of elements, one panel per "
                  "function and dtype", "",
                  "   Drawn by ``xpit bench --plot`` from the same run.", ""]
        return self._parse(lines)


class RunDirective(SphinxDirective):
    """Run a shell command (the argument) or a Python script (the content); show its output."""

    optional_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec: ClassVar[dict[str, Any]] = {"env": directives.unchanged, "returncode": int}

    def run(self) -> list[nodes.Node]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XPIT_")}
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["COLUMNS"] = "100"
        for assignment in shlex.split(self.options.get("env", "")):
            name, _, value = assignment.partition("=")
            env[name] = value
        script = "\n".join(self.content) if self.content else None
        command = self.arguments[0] if self.arguments else "python -"
        with tempfile.TemporaryDirectory() as folder:
            result = subprocess.run(["bash", "-c", command], cwd=folder, env=env, text=True,
                                    input=script, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, timeout=300, check=False)
        expected = self.options.get("returncode", 0)
        if result.returncode != expected:
            raise self.error(f"{command!r} exited with {result.returncode}, not {expected}:\n"
                             f"{result.stdout}")
        shown = command if script is None else None
        prefix = " ".join(shlex.split(self.options.get("env", "")))
        lines: list[str] = []
        if script is not None:
            lines += [".. code-block:: python", "", *(f"   {line}" for line in self.content),
                      ""]
            if prefix:
                lines[0:0] = [f"With ``{prefix}``:", ""]
            lines += ["Output:", ""]
        lines += [".. code-block:: console", ""]
        if shown is not None:
            lines.append(f"   $ {prefix + ' ' if prefix else ''}{shown}")
        lines += [f"   {line}" for line in result.stdout.rstrip().splitlines()]
        if result.returncode:
            lines.append(f"   (exit status {result.returncode})")
        return self._parse_plain([*lines, ""])

    def _parse_plain(self, lines: list[str]) -> list[nodes.Node]:
        node = nodes.container()
        node.document = self.state.document
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]),
                                self.content_offset, node)
        return node.children


def gallery_argv(gallery_conf: dict, script_vars: dict) -> list[str]:
    """The examples' command-line arguments in the gallery: those that can draw a figure
    get ``--plot``, into the build folder (the gallery shows the open figure)."""
    src = Path(script_vars["src_file"])
    if "--plot" not in src.read_text():
        return []
    folder = Path(gallery_conf["src_dir"]) / "_build" / "gallery-figures"
    folder.mkdir(parents=True, exist_ok=True)
    return ["--plot", os.path.relpath(folder / f"{src.stem}.png", src.parent)]


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("xpit-accuracy", AccuracyDirective)
    app.add_directive("xpit-bench", BenchDirective)
    app.add_directive("xpit-run", RunDirective)
    app.add_directive("xpit-contract", ContractDirective)
    app.add_directive("xpit-tests", TestsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
