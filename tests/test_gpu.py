"""CPU versus GPU: the same random inputs on NumPy and CuPy agree within 1 ULP.

The GPU runs one fused CuPy kernel per function; it is held within 1 ULP of the
array-API reference (computed here on the CPU, in float64), which is what the
NumPy results are measured against too.

Every test here carries the ``gpu`` marker and is skipped, with the CuPy probe's
reason, where no CUDA device is usable. ``bash ci/gpu`` runs them on a CUDA machine.
"""

from __future__ import annotations

import numpy as np
import pytest

import xpit

pytestmark = pytest.mark.gpu
FUNCTIONS = ["sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "logit", "sigmoid_backward"]


def _reference(name, x):
    """The array-API kernel on NumPy, in float64, rounded to x's dtype."""
    from xpit import _kernels

    with np.errstate(all="ignore"):
        return getattr(_kernels, name)(np, x.astype(np.float64)).astype(x.dtype)


def _inputs(name, dtype):
    rng = np.random.default_rng(5)
    if name in ("logit", "sigmoid_backward"):
        x = rng.uniform(0, 1, 100_000)
    else:
        x = np.concatenate([rng.normal(0, 10, 90_000), rng.uniform(-750, 750, 10_000)])
    return x.astype(dtype)


def _nulp(a, b):
    return np.testing.assert_array_max_ulp(a, b, maxulp=1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_cupy_arrays_match_numpy(name, dtype):
    import cupy

    x = _inputs(name, dtype)
    on_gpu = getattr(xpit, name)(cupy.asarray(x))
    assert isinstance(on_gpu, cupy.ndarray) and on_gpu.dtype == x.dtype
    assert on_gpu.device == cupy.cuda.Device()
    _nulp(on_gpu.get(), _reference(name, x))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_host_data_sent_to_the_gpu_comes_back_as_numpy(name):
    x = _inputs(name, "float64")
    with xpit.use_backend("cupy", strict=True):
        result = getattr(xpit, name)(x)
    assert type(result) is np.ndarray
    _nulp(result, _reference(name, x))


def test_auto_picks_the_gpu_and_scalars_stay_scalars():
    with xpit.use_backend("auto"):
        assert xpit.get_backend().name == "cupy"
        assert type(xpit.sigmoid(0.0)) is np.float64


def test_bce_on_gpu_matches_numpy():
    import cupy

    rng = np.random.default_rng(6)
    z, t = rng.normal(0, 5, 1000), rng.uniform(0, 1, 1000)
    got = xpit.binary_cross_entropy_with_logits(cupy.asarray(z), cupy.asarray(t))
    np.testing.assert_allclose(float(got), xpit.binary_cross_entropy_with_logits(z, t),
                               rtol=1e-13)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_offload_streams_host_data_through_the_gpu(dtype):
    from xpit import batch

    x = _inputs("sigmoid", dtype)
    out = np.empty_like(x)
    result = batch.apply("sigmoid", x, backend="cupy", chunk_size=7_777, out=out)
    assert result is out
    _nulp(out, _reference("sigmoid", x))
    # The same chunked offload without out.
    _nulp(batch.apply("sigmoid", x, backend="cupy", chunk_size=10_000), _reference("sigmoid", x))


def test_offload_through_a_file(tmp_path):
    from xpit import batch

    x = _inputs("log_sigmoid", "float32").reshape(1000, 100)
    np.save(tmp_path / "in.npy", x)
    batch.apply_file("log_sigmoid", tmp_path / "in.npy", tmp_path / "out.npy", backend="cupy",
                     chunk_size=30_000)
    _nulp(np.load(tmp_path / "out.npy"), _reference("log_sigmoid", x))


def test_dask_with_cupy_blocks_runs_on_the_gpu():
    import cupy
    import dask.array as da

    x = _inputs("softplus", "float64")
    dx = da.from_array(cupy.asarray(x), chunks=25_000)
    result = xpit.softplus(dx).compute()
    assert isinstance(result, cupy.ndarray)
    _nulp(result.get(), _reference("softplus", x))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_float16_on_gpu_takes_the_reference_kernel_and_stays_float16(name):
    import cupy

    x = _inputs(name, "float16")
    got = getattr(xpit, name)(cupy.asarray(x))
    assert got.dtype == cupy.float16
    with np.errstate(all="ignore"):
        expected = getattr(xpit, name)(x)
    _nulp(got.get(), expected)
