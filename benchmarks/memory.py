"""Memory figures of the batch executor, measured for real.

- ``batch.apply`` with ``out=`` on 80 MB of float32: the extra memory traced by
  tracemalloc (NumPy reports its allocations to it);
- ``batch.apply_file`` on a 1 GiB ``.npy`` file: the peak resident set (VmHWM)
  of a fresh process, which must stay under 256 MB.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc

import numpy as np

import xpit


def apply_out_extra_bytes(n: int = 20_000_000) -> tuple[int, int]:
    """Peak bytes allocated by ``batch.apply(..., out=)`` over 4n bytes of float32: on the
    first call (which starts the thread pool) and on the next."""
    x = np.random.default_rng(0).normal(size=n).astype(np.float32)
    out = np.empty_like(x)
    peaks = []
    for _ in range(2):
        tracemalloc.start()
        try:
            xpit.batch.apply("sigmoid", x, out=out)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    return peaks[0], peaks[1]


_FILE_SCRIPT = """
import re, sys, time, numpy as np, xpit

def peak_mb():
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", f.read()).group(1)) / 1024

src, dst, gib = sys.argv[1], sys.argv[2], float(sys.argv[3])
n = int(gib * 2**30) // 8
block = np.linspace(-50, 50, 2**20)
with open(src, "wb") as f:
    np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                            "shape": (n,)})
    for start in range(0, n, block.size):
        block[: n - start].tofile(f)
before = peak_mb()
start = time.perf_counter()
xpit.batch.apply_file("sigmoid", src, dst, progress=False)
print(before, peak_mb(), time.perf_counter() - start)
"""


def apply_file_peak_mb(gib: float = 1.0) -> tuple[float, float, float]:
    """(peak MB before, peak MB after, seconds) for ``apply_file`` on a ``gib`` GiB file."""
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_FILE_SCRIPT), f"{tmp}/in.npy",
             f"{tmp}/out.npy", str(gib)], capture_output=True, text=True, check=True)
    before, after, seconds = map(float, re.split(r"\s+", result.stdout.strip()))
    return before, after, seconds


def main() -> None:
    first, again = apply_out_extra_bytes()
    print(f"batch.apply(out=) on 80 MB float32: {first / 2**20:.1f} MiB extra on the first "
          f"call (thread pool start), {again / 2**20:.1f} MiB after (tracemalloc peak; "
          "target < 16 MiB)")
    before, after, seconds = apply_file_peak_mb()
    print(f"apply_file on a 1 GiB float64 file: peak RSS {after:.0f} MB (process start "
          f"{before:.0f} MB; target < 256 MB), {seconds:.1f} s, "
          f"{2**30 / seconds / 1e6:.0f} MB/s")
