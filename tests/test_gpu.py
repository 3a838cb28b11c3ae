"""CPU versus GPU: the same inputs give the same bits on NumPy and on CuPy.

The GPU runs one CuPy kernel per function and dtype, compiled by NVRTC from the C
header ``xpit/kernels/family.h`` that the NumPy ufuncs :mod:`xpit.ufuncs` are
compiled from, with contraction off. Its results must therefore be those of the
ufuncs bit for bit (NaN where they give NaN), for float16, float32 and float64:
every float16, random bit patterns of the wider types (subnormals, infinities and
NaNs included), the threshold points and the ordinary ranges. tests/test_nvrtc.py
checks the PTX of the same kernels on machines without a GPU.

Every test here carries the ``gpu`` marker and is skipped, with the CuPy probe's
reason, where no CUDA device is usable. ``bash ci/gpu`` runs them on a CUDA machine.
"""

from __future__ import annotations

import numpy as np
import pytest

import xpit
from xpit._backends import cupy as cupy_backend

pytestmark = pytest.mark.gpu
FUNCTIONS = ["sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "logit", "sigmoid_backward",
             "log1mexp", "logexpm1", "logitexp"]
# The backward passes of the PyTorch operators are kernels too (not in xpit.ufuncs).
BINARY = ["sigmoid_backward", "bce_with_logits", "sigmoid_vjp", "log_sigmoid_vjp",
          "softplus_vjp", "logit_vjp", "bce_with_logits_grad", "logdiffexp", "log1mexp_vjp",
          "logitexp_vjp"]
TERNARY = ["bce_with_logits_pos", "bce_with_logits_pos_grad"]  # (logits, targets, pos_weight)
DTYPES = ["float16", "float32", "float64"]
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}
_SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.25, 0.5, 0.75, 1e-300, -1e-300,
            5e-324, -5e-324, 1e-45, 6e-8, 88.0, 89.0, -88.0, -89.0, 103.0, -104.0, 709.0, 710.0,
            -709.0, -710.0, -745.0, -746.0, 1000.0, -1000.0, 1e300, -1e300]


def _cpu(name, *arrays):
    """The compiled NumPy ufunc on host arrays: the bits the GPU must give."""
    from xpit.kernels import _ufuncs as ufuncs

    if name == "sigmoid_backward" and len(arrays) == 1:  # the local derivative: grad = 1
        arrays = (arrays[0], arrays[0].dtype.type(1))
    with np.errstate(all="ignore"):
        return getattr(ufuncs, name)(*arrays)


def _bit_patterns(rng, dtype, n):
    """Floats of ``dtype`` from random bits: every exponent alike, NaN and inf included."""
    dtype = np.dtype(dtype)
    if dtype == np.float16:  # all of them
        return np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    info = np.iinfo(_UINT[dtype.itemsize])
    return rng.integers(0, info.max, n, dtype=info.dtype, endpoint=True).view(dtype)


def _inputs(name, dtype, seed=5):
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        if name in ("logit", "sigmoid_backward"):
            usual = rng.uniform(0, 1, 100_000)
        elif name in ("log1mexp", "logexpm1", "logitexp"):  # x <= 0 (logexpm1: y >= 0)
            usual = np.exp(rng.uniform(-745, 7, 100_000)) * (1 if name == "logexpm1" else -1)
        else:
            usual = np.concatenate([rng.normal(0, 10, 90_000), rng.uniform(-750, 750, 10_000)])
        return np.concatenate([usual.astype(dtype), np.array(_SPECIAL).astype(dtype),
                               _bit_patterns(rng, dtype, 100_000)])


def _pair(name, dtype):
    """Two aligned arrays for a two-input function: (s, grad) or (logits, targets)."""
    first = _inputs("sigmoid_backward" if name in ("sigmoid_backward", "logit_vjp")
                    else "sigmoid", dtype)
    rng = np.random.default_rng(7)
    second = np.concatenate([rng.uniform(-2, 2, first.size // 2),
                             rng.uniform(0, 1, first.size - first.size // 2)]).astype(dtype)
    second[rng.integers(0, second.size, 1_000)] = _bit_patterns(rng, dtype, 1_000)[:1_000]
    second[:4] = [0.0, 1.0, np.nan, np.inf]
    return first, rng.permutation(second)


def assert_same_bits(got, expected, *inputs):
    """Equal bit for bit where ``expected`` is a number, NaN exactly where it is NaN."""
    got = got.get() if hasattr(got, "get") else np.asarray(got)
    assert type(got) is np.ndarray
    assert got.dtype == expected.dtype and got.shape == expected.shape
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg="NaN in different places")
    uint = _UINT[expected.dtype.itemsize]
    differ = np.flatnonzero((got.view(uint) != expected.view(uint)) & ~nan)
    if differ.size:
        shown = differ[:5]
        where = [tuple(a.reshape(-1)[i].item() for a in inputs) for i in shown]
        raise AssertionError(
            f"{differ.size} of {got.size} results differ from the CPU ufunc; "
            f"inputs {where}: GPU {got.reshape(-1)[shown].tolist()}, "
            f"CPU {expected.reshape(-1)[shown].tolist()}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_cupy_arrays_give_the_bits_of_the_cpu_ufuncs(name, dtype):
    import cupy

    x = _inputs(name, dtype)
    expected = _cpu(name, x)
    on_gpu = getattr(xpit, name)(cupy.asarray(x))
    assert isinstance(on_gpu, cupy.ndarray) and on_gpu.dtype == x.dtype
    assert on_gpu.device == cupy.cuda.Device()
    assert_same_bits(on_gpu, expected, x)
    assert_same_bits(cupy_backend.fused(name, cupy.asarray(x)), expected, x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BINARY)
def test_two_input_kernels_give_the_bits_of_the_cpu_ufuncs(name, dtype):
    import cupy

    a, b = _pair(name, dtype)
    got = cupy_backend.fused(name, cupy.asarray(a), cupy.asarray(b))
    assert isinstance(got, cupy.ndarray) and got.dtype == a.dtype
    assert_same_bits(got, _cpu(name, a, b), a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", TERNARY)
def test_three_input_kernels_give_the_bits_of_the_cpu_ufuncs(name, dtype):
    import cupy

    z, t = _pair("bce_with_logits", dtype)
    w = np.random.default_rng(8).uniform(0.0, 10.0, z.size).astype(dtype)
    got = cupy_backend.fused(name, cupy.asarray(z), cupy.asarray(t), cupy.asarray(w))
    assert isinstance(got, cupy.ndarray) and got.dtype == z.dtype
    assert_same_bits(got, _cpu(name, z, t, w), z, t, w)
    broadcast = cupy_backend.fused(name, cupy.asarray(z), cupy.asarray(t), cupy.asarray(w[:1]))
    assert_same_bits(broadcast, _cpu(name, z, t, w[:1]), z, t)


@pytest.mark.parametrize("name", BINARY)
def test_two_input_kernels_promote_and_broadcast_like_the_ufuncs(name):
    import cupy

    a, b = _pair(name, "float32")
    a, b = a[:60_000].reshape(300, 200), b[:200].astype(np.float64)  # float32 with float64
    got = cupy_backend.fused(name, cupy.asarray(a), cupy.asarray(b))
    expected = _cpu(name, a, b)
    assert expected.dtype == np.float64
    assert_same_bits(got, expected)


def test_the_local_derivative_is_the_two_input_kernel_with_grad_one():
    import cupy

    s = _inputs("sigmoid_backward", "float32")
    one = cupy_backend.fused("sigmoid_backward", cupy.asarray(s))
    two = cupy_backend.fused("sigmoid_backward", cupy.asarray(s), cupy.ones_like(cupy.asarray(s)))
    assert_same_bits(one, two.get(), s)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_host_data_sent_to_the_gpu_comes_back_as_numpy(name):
    x = _inputs(name, "float64")
    with xpit.use_backend("cupy", strict=True):
        result = getattr(xpit, name)(x)
    assert type(result) is np.ndarray
    assert_same_bits(result, _cpu(name, x), x)


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


@pytest.mark.parametrize("dtype", DTYPES)
def test_offload_streams_host_data_through_the_gpu(dtype):
    from xpit import batch

    x = _inputs("sigmoid", dtype)
    expected = _cpu("sigmoid", x)
    out = np.empty_like(x)
    result = batch.apply("sigmoid", x, backend="cupy", chunk_size=7_777, out=out)
    assert result is out
    assert_same_bits(out, expected, x)
    # The same chunked offload without out.
    assert_same_bits(batch.apply("sigmoid", x, backend="cupy", chunk_size=10_000), expected, x)


def test_offload_through_a_file(tmp_path):
    from xpit import batch

    x = _inputs("log_sigmoid", "float32")[:200_000].reshape(2000, 100)
    np.save(tmp_path / "in.npy", x)
    batch.apply_file("log_sigmoid", tmp_path / "in.npy", tmp_path / "out.npy", backend="cupy",
                     chunk_size=30_000)
    assert_same_bits(np.load(tmp_path / "out.npy"), _cpu("log_sigmoid", x), x)


def test_dask_with_cupy_blocks_runs_on_the_gpu():
    import cupy
    import dask.array as da

    x = _inputs("softplus", "float64")
    dx = da.from_array(cupy.asarray(x), chunks=25_000)
    result = xpit.softplus(dx).compute()
    assert isinstance(result, cupy.ndarray)
    assert_same_bits(result, _cpu("softplus", x), x)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_float16_on_gpu_stays_float16_with_the_bits_of_the_cpu(name):
    import cupy

    x = _bit_patterns(None, "float16", 0)  # every float16
    got = getattr(xpit, name)(cupy.asarray(x))
    assert got.dtype == cupy.float16
    assert_same_bits(got, _cpu(name, x), x)
