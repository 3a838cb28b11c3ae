"""``xpit bench``: xpit against its peers and against a copy of the same bytes, in one run.

For each backend, function, dtype and size, every implementation is timed in
the same process, interleaved (one call of each in turn, so a noisy neighbour
slows them all alike), and the median of the repeats after a warm-up is kept.
Ratios are taken within one run: to the copy (the memory-bandwidth limit), to
the best peer, to ``torch.sigmoid`` (the fastest CPU peer) and to one
single-threaded ``np.exp(x, out=)`` pass (the floor of a NumPy-ufunc pipeline).

``benchmarks/`` runs this same code for developers (``python -m benchmarks``).
Heavy libraries (SciPy, PyTorch, CuPy, mpmath, matplotlib, tqdm) are imported
only here, only when present, and only when asked for.

PyTorch's OpenMP threads spin for a while after each call and take the cores
from whatever runs next in the process (xpit's own thread pool included), which
would make every row after a PyTorch row slower: ``OMP_WAIT_POLICY=PASSIVE``
is set (unless already set) before PyTorch is imported here.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import xpit

FUNCTIONS = ("sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "log1mexp", "logexpm1",
             "logitexp", "logdiffexp")
# Functions of x <= 0 (logexpm1: of y >= 0); logdiffexp(a, b) also takes b = a - (|a| + 1/2).
LOG_SPACE = ("log1mexp", "logexpm1", "logitexp", "logdiffexp")
# On PyTorch tensors (the "torch" backend) these are also timed forward and backward.
BACKWARD = ("sigmoid", "log_sigmoid", "softplus")
FWD_BWD = " fwd+bwd"  # the function column of those rows: "sigmoid fwd+bwd"
DTYPES = ("float32", "float64")
# Size 1 also times a call on a Python float (the rows of dtype "float").
QUICK_SIZES = (1, 10**3, 10**5, 10**7)
FULL_SIZES = (1, 10**3, 10**4, 10**5, 10**6, 10**7, 10**8)
PYTHON_FLOAT = "float"

Runner = Callable[[], object]


@dataclass(frozen=True)
class Impl:
    """One implementation: ``make(x, out)`` returns the zero-argument call to time."""

    name: str
    kind: str  # "xpit", "peer", "floor" (one np.exp pass) or "limit" (a copy)
    make: Callable[[Any, Any], Runner]


@dataclass(frozen=True)
class Timing:
    """One measured row of the table."""

    backend: str
    function: str
    dtype: str
    size: int
    impl: str
    kind: str
    seconds: float
    ns_per_element: float
    gb_per_s: float
    vs_copy: float | None = None
    vs_best_peer: float | None = None
    vs_torch: float | None = None
    vs_exp: float | None = None


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# How to add each optional peer to the comparison.
ADD_PEER = {
    "scipy": "pip install scipy",
    "torch": "pip install torch (a CPU-only build, far smaller: pip install torch "
             "--index-url https://download.pytorch.org/whl/cpu)",
}


@functools.cache
def peer_status(module: str) -> str | None:
    """None when the peer library ``module`` imports, else why not, with how to add it.

    An installed library can fail to import (a PyTorch whose CUDA libraries are
    broken raises OSError); that is reported, not raised, so the benchmark runs
    without it.
    """
    if module == "torch":  # before its OpenMP runtime starts: see the module docstring
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return f"not installed; add it with: {ADD_PEER[module]}"
        failure: Exception = exc
    except Exception as exc:
        failure = exc
    else:
        return None
    return f"failed to import: {failure!r}; reinstall it to add it: {ADD_PEER[module]}"


def _peer_names(backend: str, fn: str) -> dict[str, str]:
    """The optional peers' rows for one case, by the library each needs."""
    if backend == "torch":  # the rows of tensors exist only where PyTorch imports
        return {}
    names = {} if fn in LOG_SPACE else {"torch": _torch_name(fn)}  # PyTorch has none of them
    if backend == "cupy":
        return {k: v + " cuda" for k, v in names.items()}
    if fn in _SCIPY:
        names["scipy"] = f"scipy {_SCIPY[fn][0]}"
    return names


# SciPy's counterparts: (name in the table, how to get it from scipy.special).
_SCIPY: dict[str, tuple[str, Callable[[Any], Callable[..., Any]]]] = {
    "sigmoid": ("expit", lambda special: special.expit),
    "log_sigmoid": ("log_expit", lambda special: special.log_expit),
    "sigmoid_grad": ("expit(x)*expit(-x)",
                     lambda special: lambda x: special.expit(x) * special.expit(-x)),
    # private in SciPy (scipy/scipy#22439), not in every release
    "log1mexp": ("_log1mexp", lambda special: special._ufuncs._log1mexp),
    "logitexp": ("logit(exp(x))", lambda special: lambda x: special.logit(np.exp(x))),
    "logdiffexp": ("logsumexp(b=[1, -1])", lambda special: lambda a, b: special.logsumexp(
        np.stack([a, b]), axis=0, b=np.array([1.0, -1.0]).reshape((2,) + (1,) * a.ndim))),
}


def _scipy_has(fn: str) -> bool:
    if fn not in _SCIPY or peer_status("scipy") is not None:
        return False
    from scipy import special

    return fn != "log1mexp" or hasattr(special._ufuncs, "_log1mexp")


def unavailable_peers(backend: str, fn: str, dtype: str = "float64") -> dict[str, str]:
    """The peer rows that cannot be timed here, with the reason and how to add them."""
    names = _peer_names(backend, fn)
    if dtype == PYTHON_FLOAT:  # PyTorch has no call on a Python float
        names.pop("torch", None)
    return {row: status for module, row in names.items()
            if (status := peer_status(module)) is not None}


def _textbook(np_: Any, fn: str) -> Callable[..., Any]:
    def sigmoid(x: Any) -> Any:
        return 1 / (1 + np_.exp(-x))

    formulas: dict[str, Callable[..., Any]] = {
        "sigmoid": sigmoid,
        "sigmoid_grad": lambda x: sigmoid(x) * (1 - sigmoid(x)),
        "log_sigmoid": lambda x: -np_.log(1 + np_.exp(-x)),
        "softplus": lambda x: np_.log(1 + np_.exp(x)),
        "log1mexp": lambda x: np_.log(1 - np_.exp(x)),
        "logexpm1": lambda y: np_.log(np_.exp(y) - 1),
        "logitexp": lambda x: np_.log(np_.exp(x) / (1 - np_.exp(x))),
        "logdiffexp": lambda a, b: np_.log(np_.exp(a) - np_.exp(b))}
    return formulas[fn]


def _careful(np_: Any, fn: str) -> tuple[str, Callable[..., Any]]:
    """The formula a careful user writes instead (Maechler's branch for log1mexp)."""
    def log1mexp(x: Any) -> Any:
        return np_.where(x > -0.6931471805599453, np_.log(-np_.expm1(x)),
                         np_.log1p(-np_.exp(x)))

    formulas: dict[str, tuple[str, Callable[..., Any]]] = {
        "log1mexp": ("expm1/log1p branch", log1mexp),
        "logexpm1": ("log(expm1(y))", lambda y: np_.log(np_.expm1(y))),
        "logitexp": ("x - log1mexp(x)", lambda x: x - log1mexp(x)),
        "logdiffexp": ("a + log1mexp(b - a)", lambda a, b: a + log1mexp(b - a))}
    return formulas[fn]


def domain(fn: str, x: Any) -> Any:
    """Standard normal draws ``x`` moved into the domain of ``fn`` (for logdiffexp: ``a``)."""
    if fn in ("log1mexp", "logitexp"):
        return -abs(x)
    return abs(x) if fn == "logexpm1" else x


def _calls(fn: str) -> Callable[[Callable[..., Any], Any], Runner]:
    """How an implementation is called on the input ``x``: ``f(x)``, or for logdiffexp
    ``f(x, x - (|x| + 1/2))`` (the second argument made before the timing)."""
    if fn != "logdiffexp":
        return lambda f, x: lambda: f(x)

    def pair(f: Callable[..., Any], x: Any) -> Runner:
        b = x - (abs(x) + 0.5)
        return lambda: f(x, b)

    return pair


def _xpit_and_formulas(fn: str, np_: Any, lib: str) -> list[Impl]:
    """xpit (one-shot, and into ``out`` where batch takes the function), the textbook formula
    and, for the log-space members, the careful one, in the namespace ``np_`` named ``lib``."""
    call = _calls(fn)
    impls = [Impl("xpit", "xpit", lambda x, o: call(getattr(xpit, fn), x))]
    if fn != "logdiffexp":
        impls.append(Impl("xpit batch(out=)", "xpit",
                          lambda x, o: lambda: xpit.batch.apply(fn, x, out=o)))
    impls.append(Impl(f"{lib} textbook", "peer", lambda x, o: call(_textbook(np_, fn), x)))
    if fn in LOG_SPACE:
        name, careful = _careful(np_, fn)
        impls.append(Impl(f"{lib} {name}", "peer", lambda x, o: call(careful, x)))
    return impls


def _numpy_impls(fn: str) -> list[Impl]:
    call = _calls(fn)
    impls = _xpit_and_formulas(fn, np, "numpy")
    if fn == "sigmoid":
        impls.append(Impl("numpy clipped", "peer",
                          lambda x, o: lambda: 1 / (1 + np.exp(-np.clip(x, -500, 500)))))
    if fn == "softplus":
        impls.append(Impl("np.logaddexp(0, x)", "peer", lambda x, o: lambda: np.logaddexp(0, x)))
    names = _peer_names("numpy", fn)
    if "scipy" in names and _scipy_has(fn):
        from scipy import special

        scipy_fn = _SCIPY[fn][1](special)
        impls.append(Impl(names["scipy"], "peer", lambda x, o: call(scipy_fn, x)))
    if "torch" in names and peer_status("torch") is None:
        impls.append(Impl(names["torch"], "peer", lambda x, o: _torch_runner(fn, x, o)))
    impls.append(Impl("np.exp(out=) 1 thread", "floor", lambda x, o: lambda: np.exp(x, out=o)))
    impls.append(Impl("copy (np.copyto)", "limit", lambda x, o: lambda: np.copyto(o, x)))
    return impls


def _python_float_impls(fn: str) -> list[Impl]:
    """A call on one Python float: xpit, SciPy's ufunc and the textbook formula in ``math``."""
    import math

    formulas: dict[str, Callable[[float], float]] = {
        "sigmoid": lambda v: 1 / (1 + math.exp(-v)),
        "sigmoid_grad": lambda v: math.exp(-v) / (1 + math.exp(-v)) ** 2,
        "log_sigmoid": lambda v: -math.log1p(math.exp(-v)),
        "softplus": lambda v: math.log1p(math.exp(v)),
        "log1mexp": lambda v: (math.log(-math.expm1(v)) if v > -0.6931471805599453
                               else math.log1p(-math.exp(v))),
        "logexpm1": lambda v: math.log(math.expm1(v)),
        "logitexp": lambda v: v - math.log(-math.expm1(v))}
    textbook = formulas[fn]
    impls = [Impl("xpit", "xpit", lambda x, o: lambda: getattr(xpit, fn)(x)),
             Impl("math textbook", "peer", lambda x, o: lambda: textbook(x))]
    if _scipy_has(fn):
        from scipy import special

        scipy_fn = _SCIPY[fn][1](special)
        impls.append(Impl(f"scipy {_SCIPY[fn][0]}", "peer", lambda x, o: lambda: scipy_fn(x)))
    return impls


def _torch_name(fn: str) -> str:
    return {"sigmoid": "torch.sigmoid(out=)", "sigmoid_grad": "torch s*(1-s)",
            "log_sigmoid": "torch logsigmoid", "softplus": "torch softplus"}[fn]


def _torch_runner(fn: str, x: Any, o: Any) -> Runner:
    import torch

    tx = torch.from_dlpack(x) if not isinstance(x, np.ndarray) else torch.from_numpy(x)
    to = torch.from_dlpack(o) if not isinstance(o, np.ndarray) else torch.from_numpy(o)
    if fn == "sigmoid":
        return lambda: torch.sigmoid(tx, out=to)
    if fn == "log_sigmoid":
        return lambda: torch.nn.functional.logsigmoid(tx)
    if fn == "softplus":
        return lambda: torch.nn.functional.softplus(tx)

    def grad() -> Any:
        s = torch.sigmoid(tx, out=to)
        return s * (1 - s)

    return grad


_TORCH_FORWARD: dict[str, tuple[str, Callable[[Any, Any], Any]]] = {
    "sigmoid": ("torch.sigmoid", lambda torch, t: torch.sigmoid(t)),
    "sigmoid_grad": ("torch s*(1-s)", lambda torch, t: torch.sigmoid(t) * (1 - torch.sigmoid(t))),
    "log_sigmoid": ("torch logsigmoid", lambda torch, t: torch.nn.functional.logsigmoid(t)),
    "softplus": ("torch softplus", lambda torch, t: torch.nn.functional.softplus(t))}


def _torch_tensor_impls(fn: str) -> list[Impl]:
    """CPU tensors: xpit's operator, the same call on the tensor's NumPy view, PyTorch's own
    function and a copy; for ``"<fn> fwd+bwd"``, a forward and a backward pass of each
    (``y.backward(ones)`` into a fresh ``.grad``)."""
    import torch

    name, with_backward = fn.removesuffix(FWD_BWD), fn.endswith(FWD_BWD)
    xpit_fn = getattr(xpit, name)
    peer, torch_fn = _TORCH_FORWARD[name]
    if with_backward:
        def both(f: Callable[[Any], Any]) -> Callable[[Any, Any], Runner]:
            def make(t: Any, o: Any) -> Runner:
                leaf, ones = t.clone().requires_grad_(True), torch.ones_like(t)

                def run() -> None:
                    leaf.grad = None
                    f(leaf).backward(ones)

                return run

            return make

        return [Impl("xpit", "xpit", both(xpit_fn)),
                Impl(peer, "peer", both(lambda t: torch_fn(torch, t)))]
    return [Impl("xpit", "xpit", lambda t, o: lambda: xpit_fn(t)),
            Impl("xpit on t.numpy()", "xpit", lambda t, o: (lambda v: lambda: xpit_fn(v))(
                t.numpy())),
            Impl(peer, "peer", lambda t, o: lambda: torch_fn(torch, t)),
            Impl("copy (Tensor.copy_)", "limit", lambda t, o: lambda: o.copy_(t))]


def _cupy_impls(fn: str) -> list[Impl]:
    import cupy

    impls = _xpit_and_formulas(fn, cupy, "cupy")
    if fn in ("sigmoid", "sigmoid_grad"):
        from cupyx.scipy import special

        peer = (special.expit if fn == "sigmoid" else
                lambda x: special.expit(x) * special.expit(-x))
        impls.append(Impl("cupyx expit", "peer", lambda x, o: lambda: peer(x)))
    if fn not in LOG_SPACE and peer_status("torch") is None:
        import torch

        if torch.cuda.is_available():
            impls.append(Impl(_torch_name(fn) + " cuda", "peer",
                              lambda x, o: _torch_runner(fn, x, o)))
    impls.append(Impl("copy (device)", "limit", lambda x, o: lambda: cupy.copyto(o, x)))
    return impls


def _available_bytes(backend: str) -> int:
    if backend == "cupy":
        import cupy

        free: int = cupy.cuda.runtime.memGetInfo()[0]
        return free
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def usable_sizes(sizes: Sequence[int], dtype: str, backend: str) -> list[int]:
    """The sizes whose arrays (input, output and a textbook peer's temporaries) fit in
    half of the free memory."""
    budget = _available_bytes(backend) // 2
    return [n for n in sizes if 6 * n * np.dtype(dtype).itemsize <= budget]


def _time(runners: list[Runner], repeats: int, sync: Callable[[], None]) -> list[float]:
    """Median seconds per call of each runner, interleaved, after one warm-up call each."""
    calls = []
    for run in runners:  # warm up (first calls load and compile), then find how many calls
        run()            # make a 2 ms sample
        sync()
        start = time.perf_counter()
        run()
        sync()
        calls.append(max(1, int(2e-3 / max(time.perf_counter() - start, 1e-9))))
    samples: list[list[float]] = [[] for _ in runners]
    for _ in range(repeats):
        for i, run in enumerate(runners):
            start = time.perf_counter()
            for _ in range(calls[i]):
                run()
            sync()
            samples[i].append((time.perf_counter() - start) / calls[i])
    return [statistics.median(s) for s in samples]


def _rows(backend: str, fn: str, dtype: str, n: int, impls: list[Impl], seconds: list[float]
          ) -> list[Timing]:
    # Read the input (logdiffexp: both), write the output; forward + backward also reads the
    # input and the incoming gradient and writes the input's gradient.
    arrays = 5 if fn.endswith(FWD_BWD) else 1 + (2 if fn == "logdiffexp" else 1)
    itemsize = np.dtype(dtype).itemsize

    def moved(impl: Impl) -> int:  # np.exp and the copy read one array, write one
        return (2 if impl.kind in ("floor", "limit") else arrays) * n * itemsize

    by_name = dict(zip((i.name for i in impls), seconds, strict=True))
    copy = next((s for i, s in zip(impls, seconds, strict=True) if i.kind == "limit"), None)
    peers = [s for i, s in zip(impls, seconds, strict=True) if i.kind == "peer"]
    torch_s = next((s for name, s in by_name.items() if name.startswith("torch")), None)
    exp_s = next((s for i, s in zip(impls, seconds, strict=True) if i.kind == "floor"), None)
    return [Timing(backend, fn, dtype, n, impl.name, impl.kind, s, s / n * 1e9,
                   moved(impl) / s / 1e9,
                   s / copy if copy else None, s / min(peers) if peers else None,
                   s / torch_s if torch_s else None, s / exp_s if exp_s else None)
            for impl, s in zip(impls, seconds, strict=True)]


def run_timings(backends: Sequence[str] = ("numpy",), functions: Sequence[str] = FUNCTIONS,
                dtypes: Sequence[str] = DTYPES, sizes: Sequence[int] = QUICK_SIZES,
                repeats: int = 5, progress: bool | None = None) -> list[Timing]:
    """Time every implementation on every case; see the module docstring."""
    cases = [(b, f, d, n) for b in backends for d in dtypes
             for n in usable_sizes(sizes, d, b) for f in _case_functions(b, functions)]
    if "numpy" in backends and 1 in sizes:  # a call on a Python float
        cases = [("numpy", f, PYTHON_FLOAT, 1) for f in functions
                 if f != "logdiffexp"] + cases
    rows: list[Timing] = []
    bar = _bar(progress, len(cases))
    rng = np.random.default_rng(0)
    for backend, fn, dtype, n in cases:
        if bar is not None:
            bar.set_description(f"{backend} {fn} {dtype} {n:.0e}")
        x = domain(fn.removesuffix(FWD_BWD), (rng.standard_normal(n) * 5).astype(dtype))
        out = np.empty_like(x)
        if dtype == PYTHON_FLOAT:
            x, out = float(x[0]), None
            impls, sync = _python_float_impls(fn), lambda: None
        elif backend == "torch":
            import torch

            x, out = torch.from_numpy(x), torch.from_numpy(out)
            impls, sync = _torch_tensor_impls(fn), lambda: None
        elif backend == "cupy":
            import cupy

            x, out = cupy.asarray(x), cupy.asarray(out)
            impls, sync = _cupy_impls(fn), cupy.cuda.get_current_stream().synchronize
        else:
            impls, sync = _numpy_impls(fn), lambda: None
        with np.errstate(all="ignore"):  # the textbook peers overflow, by design
            seconds = _time([impl.make(x, out) for impl in impls], repeats, sync)
        rows += _rows(backend, fn, dtype, n, impls, seconds)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return rows


def _case_functions(backend: str, functions: Sequence[str]) -> list[str]:
    """The function column of a backend's cases: on tensors, also forward plus backward."""
    if backend != "torch":
        return list(functions)
    functions = [f for f in functions if f in _TORCH_FORWARD]  # with a PyTorch counterpart
    return [*functions, *(f + FWD_BWD for f in functions if f in BACKWARD)]


def _bar(progress: bool | None, total: int) -> Any:
    import sys

    if progress is None:
        progress = sys.stderr is not None and sys.stderr.isatty()
    if not progress or not _have("tqdm"):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="case", leave=False, dynamic_ncols=True)


def accuracy_errors(fn: str, dtype: str = "float64", n: int = 20_000
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The points of ``xpit bench --accuracy`` and each implementation's error at every one.

    Parameters
    ----------
    fn : str
        A one-argument function of :data:`FUNCTIONS` (not ``logdiffexp``).
    dtype : {'float64', 'float32'}
        The dtype of the points and of every result.
    n : int
        How many points: the bulk, both tails out to the subnormals and the threshold
        points of :mod:`xpit._mpreference` (log-probabilities for the log-space members),
        from a fixed seed.

    Returns
    -------
    x : numpy.ndarray
        The points.
    errors : dict of str to numpy.ndarray
        For xpit and each NumPy-side peer that runs here (the textbook formula, SciPy,
        PyTorch, ...), by its name in the table: ``|result - exact|`` in ULP of ``dtype``
        against a 128-bit mpmath reference at each point (inf where an exact 0, inf or
        NaN is missed).
    """
    from xpit import _mpreference as ref

    if fn == "logdiffexp":
        raise ValueError("accuracy_errors: logdiffexp takes two arguments; "
                         "tests/test_accuracy.py measures it")
    if fn in LOG_SPACE:
        x = domain(fn, ref.log_probability_sample(np.dtype(dtype), n, seed=1))
    else:
        x = ref.real_line_sample(np.dtype(dtype), n, seed=1)
    hi, lo = ref.reference(fn, x)
    out = np.empty_like(x)
    errors = {}
    for impl in _numpy_impls(fn):
        if impl.kind != "peer" and impl.name != "xpit":
            continue
        with np.errstate(all="ignore"):
            y = impl.make(x, out)()
        y = np.asarray(y.numpy() if hasattr(y, "numpy") else y)
        if y.dtype != x.dtype or y.shape != x.shape:
            y = out  # an out= peer returns the buffer
        errors[impl.name] = ref.ulp_error(y, hi, lo, np.dtype(dtype))
    return x, errors


def run_accuracy(functions: Sequence[str] = FUNCTIONS, dtypes: Sequence[str] = DTYPES,
                 n: int = 20_000) -> list[dict[str, Any]]:
    """Max and mean ULP error against mpmath, for xpit and each NumPy-side peer
    (:func:`accuracy_errors` summed up; logdiffexp is left to tests/test_accuracy.py)."""
    rows = []
    for fn in functions:
        if fn == "logdiffexp":  # two arguments: tests/test_accuracy.py measures it
            continue
        for dtype in dtypes:
            x, errors = accuracy_errors(fn, dtype, n)
            for name, err in errors.items():
                finite = err[np.isfinite(err)]
                rows.append({"function": fn, "dtype": dtype, "impl": name,
                             "max_ulp": float(err.max()),
                             "mean_ulp": float(finite.mean()) if finite.size else float("inf"),
                             "points": int(x.size)})
    return rows


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    from xpit._chunks import usable_cores

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {"xpit": xpit.__version__, "numpy": np.__version__,
                "python": platform.python_version()}
    for lib in ("scipy", "torch"):
        status = peer_status(lib)
        versions[lib] = __import__(lib).__version__ if status is None else status
    for lib in ("cupy", "array_api_compat"):
        if _have(lib):
            versions[lib] = __import__(lib).__version__
    gpu = None
    usable, reason = xpit._registry.probe("cupy")
    if usable:
        import cupy

        gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        gpu = gpu.decode() if isinstance(gpu, bytes) else gpu
    from xpit._backends import numpy as numpy_backend

    return {"cpu": cpu, "cores": usable_cores(), "platform": platform.platform(),
            "numpy_kernels": numpy_backend.compiled()[1],
            "gpu": gpu or f"none ({reason})", "versions": versions}


def format_table(rows: Sequence[Timing]) -> str:
    """The timing rows as a text table, one block per backend, function, dtype and size."""
    def ratio(v: float | None) -> str:
        return f"{v:7.2f}x" if v is not None else "       -"

    lines = [f"{'backend':7} {'function':20} {'dtype':7} {'size':>8}  {'implementation':24} "
             f"{'ns/el':>8} {'GB/s':>7} {'vs copy':>8} {'vs best':>8} {'vs torch':>8} "
             f"{'vs exp':>8}"]
    def missing(key: tuple[str, str, str, int]) -> list[str]:
        backend, fn, dtype, size = key
        return [f"{backend:7} {fn:20} {dtype:7} {size:8.0e}  {row:24} "
                f"{status.split(';')[0].split(':')[0]} (see below)"
                for row, status in unavailable_peers(backend, fn, dtype).items()]

    previous = None
    for r in rows:
        key = (r.backend, r.function, r.dtype, r.size)
        if key != previous and previous is not None:
            lines += [*missing(previous), ""]
        previous = key
        lines.append(f"{r.backend:7} {r.function:20} {r.dtype:7} {r.size:8.0e}  {r.impl:24} "
                     f"{r.ns_per_element:8.3f} {r.gb_per_s:7.2f} {ratio(r.vs_copy)} "
                     f"{ratio(r.vs_best_peer)} {ratio(r.vs_torch)} {ratio(r.vs_exp)}")
    if previous is not None:
        lines += missing(previous)
    notes = {module: status for module in ADD_PEER if (status := peer_status(module))}
    if notes:
        lines.append("")
        lines += [f"not measured: {module}: {status}" for module, status in notes.items()]
    return "\n".join(lines)


def format_accuracy(rows: Sequence[dict[str, Any]]) -> str:
    lines = [f"{'function':12} {'dtype':7} {'implementation':24} {'max ULP':>12} {'mean ULP':>9}"]
    for r in rows:
        lines.append(f"{r['function']:12} {r['dtype']:7} {r['impl']:24} {r['max_ulp']:12.4g} "
                     f"{r['mean_ulp']:9.3f}")
    return "\n".join(lines)


# The lines every panel has keep one colour across the figure; the peers of one function
# take the rest in turn.
_OTHER_COLOURS = ("C3", "C4", "C6", "C8", "C9", "C5")


def _colour(impl: str, kind: str) -> str | None:
    if impl == "xpit":
        return "C0"
    if impl == "xpit batch(out=)":
        return "C1"
    if impl.endswith("textbook"):
        return "C2"
    return {"floor": "C7", "limit": "black"}.get(kind)


def plot(rows: Sequence[Timing], path: str) -> None:
    """Throughput against size, one line per implementation, one panel per case."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("xpit bench --plot needs matplotlib; install it with "
                          "pip install 'xpit[plot]'") from None
    rows = [r for r in rows if r.dtype != PYTHON_FLOAT]  # one point, not a curve: the table
    panels = sorted({(r.backend, r.function, r.dtype) for r in rows})
    cols = 2
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(8.5 * cols, 3.6 * nrows), squeeze=False)
    for ax, (backend, fn, dtype) in zip(axes.flat, panels, strict=False):
        kinds = {r.impl: r.kind for r in rows
                 if (r.backend, r.function, r.dtype) == (backend, fn, dtype)}
        others = iter(_OTHER_COLOURS)
        for impl, kind in kinds.items():
            pts = [(r.size, r.gb_per_s) for r in rows if (r.backend, r.function, r.dtype,
                                                         r.impl) == (backend, fn, dtype, impl)]
            style = "--" if kind == "limit" else "-"
            ax.plot(*zip(*pts, strict=True), style, marker="o", label=impl,
                    color=_colour(impl, kind) or next(others))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{fn}, {dtype} ({backend})")
        ax.set_xlabel("elements")
        ax.set_ylabel("GB/s (bytes read + written)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1))  # off the data
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(path: str, rows: Sequence[Timing],
               accuracy: Sequence[dict[str, Any]] | None) -> None:
    with open(path, "w") as f:
        json.dump({"machine": machine(), "timings": [asdict(r) for r in rows],
                   "not_measured": {module: status for module in ADD_PEER
                                    if (status := peer_status(module))},
                   "accuracy": list(accuracy or [])}, f, indent=2)
