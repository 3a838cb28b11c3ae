"""Backend selection, dispatch and the CPU fallback, tested for real.

CuPy (``cupy-cuda12x``) is installed in CI but no CUDA device is usable, so the
fallback path below runs against the real CuPy and its real CUDA error. The
"CuPy not installed" case runs in a subprocess where importing CuPy fails.
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
from array_api_extra.testing import assert_equal

import xpit
from xpit import _registry

CUPY_USABLE, CUPY_REASON = _registry.probe("cupy")
needs_no_gpu = pytest.mark.skipif(CUPY_USABLE, reason="a CUDA device is usable: no fallback")
needs_cupy_installed = pytest.mark.skipif(importlib.util.find_spec("cupy") is None,
                                          reason="CuPy is not installed")


def run_python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    full_env = {k: v for k, v in os.environ.items() if k != "XPIT_BACKEND"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=full_env, timeout=120)


# --- selection ------------------------------------------------------------------------------

def test_default_is_numpy():
    info = xpit.get_backend()
    assert (info.name, info.requested, info.source, info.strict) == ("numpy", "numpy",
                                                                     "default", False)


@pytest.mark.parametrize("raw", ["numpy", " NumPy ", "NUMPY\n"])
def test_environment_variable_is_normalised(backend_env, raw):
    backend_env(raw)
    info = xpit.get_backend()
    assert (info.name, info.source) == ("numpy", "XPIT_BACKEND")


@pytest.mark.parametrize("raw", ["", "   "])
def test_empty_environment_variable_means_unset(backend_env, raw):
    backend_env(raw)
    assert xpit.get_backend().source == "default"


def test_environment_variable_is_read_at_first_need_not_import():
    result = run_python("""
        import os, xpit
        os.environ["XPIT_BACKEND"] = "auto"  # set after import, as in a notebook
        print(xpit.get_backend().requested)
        os.environ["XPIT_BACKEND"] = "numpy"  # read once: a running process uses set_backend
        print(xpit.get_backend().requested)
        xpit.set_backend("numpy")
        print(xpit.get_backend().requested)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["auto", "auto", "numpy"]


def test_invalid_environment_value_fails_at_first_call_not_import():
    result = run_python("""
        import xpit, numpy as np
        try:
            xpit.sigmoid(np.zeros(2))
        except ValueError as e:
            print(e)
    """, env={"XPIT_BACKEND": "cuda"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("Invalid value for XPIT_BACKEND: 'cuda'. "
                                     "Expected one of 'numpy', 'cupy', 'auto'.")


def test_invalid_environment_value_raises_until_fixed(backend_env, monkeypatch):
    backend_env("cuda")
    for _ in range(2):
        with pytest.raises(ValueError, match="Invalid value for XPIT_BACKEND: 'cuda'"):
            xpit.sigmoid(np.zeros(1))
    monkeypatch.setenv("XPIT_BACKEND", "numpy")  # an invalid value is not cached
    assert xpit.get_backend().source == "XPIT_BACKEND"


def test_invalid_names_are_value_errors():
    with pytest.raises(ValueError, match=r"Invalid value for backend= in xpit\.sigmoid: 'gpu'\. "
                                         r"Expected one of 'numpy', 'cupy', 'auto'\."):
        xpit.sigmoid(1.0, backend="gpu")
    with pytest.raises(ValueError, match=r"Invalid value for xpit\.set_backend\(\): 'cuda'"):
        xpit.set_backend("cuda")
    with pytest.raises(ValueError, match=r"Invalid value for xpit\.use_backend\(\): 3"):
        xpit.use_backend(3).__enter__()


def test_precedence_call_over_context_over_set_over_environment(backend_env):
    backend_env("auto")
    assert xpit.get_backend().source == "XPIT_BACKEND"
    xpit.set_backend("numpy")
    assert xpit.get_backend().source == "set_backend()"
    with xpit.use_backend("auto"):
        assert xpit.get_backend().source == "use_backend()"
        with xpit.use_backend("numpy"):
            assert xpit.get_backend().requested == "numpy"
        assert xpit.get_backend().requested == "auto"
    assert xpit.get_backend().source == "set_backend()"
    xpit.set_backend(None)
    assert xpit.get_backend().source == "XPIT_BACKEND"


def test_use_backend_restores_on_error():
    with pytest.raises(RuntimeError), xpit.use_backend("auto"):
        raise RuntimeError("boom")
    assert xpit.get_backend().source == "default"


def test_use_backend_does_not_leak_across_threads_or_tasks():
    seen = {}

    def worker():
        seen["thread"] = xpit.get_backend().source

    async def task(name, backend):
        if backend:
            with xpit.use_backend(backend):
                await asyncio.sleep(0.01)
                seen[name] = xpit.get_backend().requested
        else:
            await asyncio.sleep(0.005)
            seen[name] = xpit.get_backend().requested

    async def both():
        await asyncio.gather(task("a", "auto"), task("b", None))

    with xpit.use_backend("auto"):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    asyncio.run(both())
    assert seen == {"thread": "default", "a": "auto", "b": "numpy"}


# --- the fallback, with the real CuPy and no GPU ------------------------------------------------

@needs_no_gpu
@needs_cupy_installed
def test_cupy_is_installed_but_not_usable_and_says_why():
    usable, reason = _registry.probe("cupy")
    assert not usable
    assert "no CUDA device is usable" in reason and "CUDA" in reason.split(":", 1)[1]


@needs_no_gpu
@pytest.mark.parametrize("how", ["env", "set", "context", "call"])
def test_fallback_warns_once_and_computes_with_numpy(backend_env, how):
    x = np.array([-1.0, 0.0, 1.0])
    expected = xpit.sigmoid(x)

    def call():
        if how == "call":
            return xpit.sigmoid(x, backend="cupy")
        return xpit.sigmoid(x)

    if how == "env":
        backend_env("cupy")
    elif how == "set":
        xpit.set_backend("cupy")
    with (xpit.use_backend("cupy") if how == "context" else warnings.catch_warnings()), \
            pytest.warns(xpit.BackendFallbackWarning) as record:
        first = call()
        second = call()
        info = xpit.get_backend()
    assert len(record) == 1
    message = str(record[0].message)
    assert "'cupy'" in message and CUPY_REASON in message and "NumPy" in message
    assert record[0].filename == __file__  # points at the caller's line
    assert issubclass(xpit.BackendFallbackWarning, RuntimeWarning)
    assert_equal(first, expected)
    assert_equal(second, expected)
    if how != "call":
        assert (info.name, info.requested, info.fell_back) == ("numpy", "cupy", True)


@needs_no_gpu
def test_strict_raises_with_the_reason():
    with xpit.use_backend("cupy", strict=True), \
            pytest.raises(xpit.BackendUnavailableError, match="not usable") as err:
        xpit.sigmoid(np.zeros(3))
    assert CUPY_REASON in str(err.value) and "xpit.sigmoid" in str(err.value)
    xpit.set_backend("cupy", strict=True)
    with pytest.raises(xpit.BackendUnavailableError):
        xpit.logit(0.5)
    with pytest.raises(xpit.BackendUnavailableError):  # per-call takes the ambient strictness
        xpit.logit(0.5, backend="cupy")


@needs_no_gpu
def test_auto_falls_back_silently():
    with xpit.use_backend("auto"), warnings.catch_warnings():
        warnings.simplefilter("error")
        result = xpit.sigmoid(np.zeros(2))
    assert isinstance(result, np.ndarray)
    assert xpit.get_backend().name == "numpy"


def test_cupy_not_installed_falls_back_with_that_reason():
    result = run_python("""
        import sys, warnings
        sys.modules["cupy"] = None  # importing CuPy now fails as if it were not installed
        import numpy as np, xpit
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            y = xpit.sigmoid(np.zeros(2), backend="cupy")
        print(type(y).__name__, y.tolist(), len(w), w[0].category.__name__)
        print(w[0].message)
    """)
    assert result.returncode == 0, result.stderr
    first, message = result.stdout.strip().splitlines()
    assert first == "ndarray [0.5, 0.5] 1 BackendFallbackWarning"
    assert "CuPy is not installed" in message and "xpit[gpu]" in message


def test_importing_xpit_imports_no_optional_library():
    result = run_python("""
        import sys, numpy as np, xpit
        xpit.sigmoid(np.zeros(3)); xpit.sigmoid(1.0); xpit.get_backend()
        heavy = ["cupy", "torch", "jax", "dask", "sklearn", "matplotlib", "scipy",
                 "array_api_strict", "array_api_compat", "tqdm"]
        print(sorted(m for m in heavy if m in sys.modules))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_import_has_no_side_effects_on_environment():
    result = run_python("""
        import os
        before = dict(os.environ)
        import xpit
        print(before == dict(os.environ))
    """)
    assert result.stdout.strip() == "True"


# --- dispatch: the input decides --------------------------------------------------------------

def test_array_is_computed_by_its_own_library(target):
    x = target.asarray([0.0, 1.0])
    result = xpit.sigmoid(x, backend="auto")
    assert type(result) is type(x)
    assert result.device == x.device


def test_backend_argument_that_contradicts_the_array_is_a_value_error(target):
    if target.is_host:
        pytest.skip("host data may be routed anywhere")
    with pytest.raises(ValueError, match=r"xpit\.sigmoid: backend='numpy' conflicts with "
                                         r"argument 'x'"):
        xpit.sigmoid(target.asarray([0.0]), backend="numpy")
    with pytest.raises(ValueError, match="conflicts"):
        xpit.sigmoid(target.asarray([0.0]), backend="cupy")


def test_ambient_selection_does_not_move_arrays(target):
    if target.is_host:
        pytest.skip("host data follows the selection")
    with xpit.use_backend("cupy", strict=True):  # strict: would raise if consulted
        result = xpit.sigmoid(target.asarray([0.0]))
    assert result.device == target.device


def test_arguments_from_different_libraries_are_a_value_error(target):
    if target.is_host:
        pytest.skip("needs a second library")
    s = target.asarray([0.5, 0.5])
    with pytest.raises(ValueError, match=r"argument 's' .* and argument 'grad' \(host data: "
                                         r"ndarray\) come from different libraries"):
        xpit.sigmoid_backward(s, np.ones(2))


def test_arguments_on_different_devices_are_a_value_error():
    import array_api_strict as s

    a = s.asarray([0.5], device=s.Device("device1"))
    b = s.asarray([1.0], device=s.Device("device2"))
    with pytest.raises(ValueError, match=r"are on different devices") as err:
        xpit.binary_cross_entropy_with_logits(a, b)
    assert "device1" in str(err.value) and "device2" in str(err.value)


def test_python_scalar_joins_the_array_library():
    import array_api_strict as s

    z = s.asarray(2.0, device=s.Device("device1"))
    loss = xpit.binary_cross_entropy_with_logits(z, 1)
    assert loss.device == z.device


def test_strict_and_numpy_libraries_are_told_apart():
    import array_api_strict as s

    with pytest.raises(ValueError, match=r"array_api_strict array .* different libraries"):
        xpit.binary_cross_entropy_with_logits(s.asarray([0.0]), np.zeros(1))


# --- the registry ---------------------------------------------------------------------------

def _host_copy_backend(name="host-copy", **overrides):
    fields = dict(name=name, array_types=(), namespace=lambda a: np,
                  probe=lambda: (True, "always"), to_device=np.asarray, to_host=np.asarray,
                  version=lambda: "1")
    fields.update(overrides)
    return xpit.Backend(**fields)


def test_register_backend_routes_host_data_and_is_selectable():
    calls = []

    def to_device(a):
        calls.append("in")
        return np.array(a)

    xpit.register_backend(_host_copy_backend(to_device=to_device))
    with pytest.raises(ValueError, match=r"'numpy', 'cupy', 'host-copy', 'auto'"):
        xpit.set_backend("nope")
    with xpit.use_backend("host-copy"):
        assert float(xpit.sigmoid(0.0)) == 0.5
    assert calls == ["in"]


def test_register_backend_validates():
    with pytest.raises(ValueError, match="already registered"):
        xpit.register_backend(_host_copy_backend(name="numpy"))
    with pytest.raises(ValueError, match="invalid backend name 'auto'"):
        xpit.register_backend(_host_copy_backend(name="auto"))
    with pytest.raises(ValueError, match="invalid backend name 'Bad Name'"):
        xpit.register_backend(_host_copy_backend(name="Bad Name"))
    with pytest.raises(TypeError, match="probe of backend 'x' is not callable"):
        xpit.register_backend(_host_copy_backend(name="x", probe=None))
    with pytest.raises(ValueError, match="qualified type names"):
        xpit.register_backend(_host_copy_backend(name="x", array_types=("ndarray",)))
    with pytest.raises(TypeError, match=r"expected an xpit\.Backend"):
        xpit.register_backend("cupy")


def test_a_crashing_probe_means_unusable_with_its_reason():
    def probe():
        raise OSError("driver on fire")

    xpit.register_backend(_host_copy_backend(name="flaky", probe=probe))
    with pytest.warns(xpit.BackendFallbackWarning, match=r"driver on fire"):
        assert xpit.sigmoid(0.0, backend="flaky") == 0.5


def test_without_the_compiled_kernels_numpy_falls_back_to_the_reference_with_one_warning():
    """Where the extension was not built, xpit imports, warns once and computes NumPy data
    with the array-API reference; xpit info says so. Run in a process where importing the
    extension fails for real."""
    code = textwrap.dedent("""
        import sys, warnings
        sys.modules["xpit.kernels._ufuncs"] = None  # as if it had never been built
        import numpy as np, xpit
        from xpit.cli import collect_info
        from xpit.kernels import reference
        x = np.linspace(-40, 40, 10**6)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y = xpit.sigmoid(x)
            scalar = xpit.sigmoid(0.5)
            small = xpit.log_sigmoid(np.float32([1, 2]))
            loss = xpit.binary_cross_entropy_with_logits(x, x > 0)
        print(len(caught), caught[0].category.__name__)
        print(caught[0].message)
        print(bool(np.array_equal(y, reference.sigmoid(np, x))), type(scalar).__name__,
              small.dtype)
        print(collect_info()["numpy_kernels"])
        try:
            import xpit.ufuncs
        except ImportError as exc:
            print(exc)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    count, message, values, info, ufuncs_error = result.stdout.splitlines()
    assert count == "1 BackendFallbackWarning"
    assert message.startswith("xpit: the compiled kernels are not available (ModuleNotFoundError(")
    assert "xpit.kernels._ufuncs" in message
    assert "computed by the array-API reference kernels" in message
    assert values == "True float64 float32"
    assert info.startswith("not available (ModuleNotFoundError(")
    assert ufuncs_error.startswith("xpit.ufuncs needs the compiled extension")


def test_the_small_input_lane_follows_every_switch(backend_env):
    """Python floats and small arrays skip the dispatcher only while host data surely goes
    to NumPy: a use_backend block, set_backend and XPIT_BACKEND each close that lane."""
    moved = []

    def to_device(a):
        moved.append(np.shape(a))
        return np.array(a)

    xpit.register_backend(xpit.Backend(
        name="host-copy", array_types=(), namespace=lambda a: np,
        probe=lambda: (True, "always"), to_device=to_device, to_host=np.asarray,
        version=lambda: "1"))
    small = np.array([0.5, 1.5])
    xpit.sigmoid(0.5), xpit.sigmoid(small)
    assert moved == []
    with xpit.use_backend("host-copy"):
        xpit.sigmoid(0.5), xpit.sigmoid(small)
    assert moved == [(), (2,)]
    xpit.sigmoid(0.5)
    assert len(moved) == 2  # the block is closed: the lane again
    xpit.set_backend("host-copy")
    xpit.sigmoid(0.5)
    xpit.set_backend(None)
    xpit.sigmoid(0.5)
    assert len(moved) == 3
    backend_env("host-copy")
    xpit.sigmoid(small)
    assert len(moved) == 4
