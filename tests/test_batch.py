"""The batch executor, the NumPy fast path, files larger than memory, and the CLI ``apply``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pytest
from array_api_extra.testing import assert_equal

import xpit
from xpit import batch
from xpit._backends import numpy as numpy_backend
from xpit._chunks import chunk_slices, pipeline_schedule
from xpit.cli import main
from xpit.kernels import reference as array_api

FUNCTIONS = list(batch.FUNCTIONS)


def _data(func, shape=(37, 29), dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    values = rng.uniform(-0.1, 1.1, shape) if func == "logit" else rng.normal(0, 20, shape)
    values.flat[:4] = [0.0, np.nan, np.inf, -np.inf]
    with np.errstate(over="ignore", invalid="ignore"):  # NaN and inf to integers
        return values.astype(dtype)


# --- the NumPy fast path (the compiled ufuncs) agrees with the reference ---------------------

@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("func", FUNCTIONS)
def test_fast_path_agrees_with_the_reference(func, dtype):
    """The compiled ufuncs and the array-API reference, point by point: within the
    reference's own error (both are held to mpmath in test_accuracy), with NaN, the
    infinities and the signs of nonzero results in the same places."""
    from xpit._mpreference import log_probability_sample, probability_sample, real_line_sample

    if func in ("log1mexp", "logitexp", "logexpm1"):
        x = log_probability_sample(np.dtype(dtype), 50_000, 3)
        x = -x if func == "logexpm1" else x
    else:
        x = (probability_sample if func == "logit" else real_line_sample)(np.dtype(dtype),
                                                                          50_000, 3)
    fast = getattr(xpit, func)(x)
    work = np.float32 if dtype == "float16" else np.float64
    with np.errstate(all="ignore"):
        reference = getattr(array_api, func)(np, x.astype(work)).astype(dtype)
    # the reference's own error: 2 ULP in float64 (3 for logexpm1 and logitexp: test_accuracy)
    maxulp = (3 if func in ("logexpm1", "logitexp") else 2) if dtype == "float64" else 1
    np.testing.assert_array_max_ulp(fast, reference, maxulp=maxulp)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(reference))
    np.testing.assert_array_equal(np.isinf(fast), np.isinf(reference))
    nonzero = ~np.isnan(reference) & (reference != 0)
    np.testing.assert_array_equal(np.signbit(fast[nonzero]), np.signbit(reference[nonzero]))


# --- apply equals the one-shot call, bit for bit ---------------------------------------------

@pytest.mark.parametrize("func", FUNCTIONS)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32", "bool"])
@pytest.mark.parametrize("chunk_size", [1, 7, 1000, None])
def test_apply_equals_one_shot(func, dtype, chunk_size):
    x = _data(func, dtype=dtype)
    expected = getattr(xpit, func)(x)
    for workers in (1, 3):
        result = batch.apply(func, x, chunk_size=chunk_size, workers=workers)
        assert_equal(result, expected)


@pytest.mark.parametrize("func", FUNCTIONS)
def test_apply_every_layout(func):
    base = _data(func, shape=(20, 30))
    views = {"C": base, "F": np.asfortranarray(base), "strided": base[::2, ::3],
             "reversed": base[::-1, ::-2], "transposed": base.T, "0-d": base[3, 4],
             "3-d": base.reshape(5, 4, 30)}
    for label, view in views.items():
        expected = getattr(xpit, func)(np.array(view, copy=True))
        assert_equal(batch.apply(func, view, chunk_size=13), np.asarray(expected),
                     err_msg=label)
        out = np.empty(np.shape(view), expected.dtype, order="F")  # a layout unlike the input's
        assert batch.apply(func, view, out=out, chunk_size=13) is out
        assert_equal(out, np.asarray(expected), err_msg=label)


def test_in_place_and_out():
    x = _data("sigmoid")
    expected = xpit.sigmoid(x)
    out = np.empty_like(x)
    assert xpit.batch_sigmoid(x, out=out) is out
    assert_equal(out, expected)
    assert xpit.batch_sigmoid(x, out=x, chunk_size=100) is x
    assert_equal(x, expected)


def test_batch_function_given_as_the_function_itself():
    x = _data("softplus")
    assert_equal(batch.apply(xpit.softplus, x), xpit.softplus(x))


def _immutable_out(x, out):
    """JAX arrays cannot be written into: out= is refused before anything is computed."""
    with pytest.raises(TypeError, match=r"xpit\.batch\.apply: out cannot be a JAX array"):
        batch.apply("sigmoid", x, out=out)


def test_batch_on_other_libraries_writes_into_out(target):
    x = target.asarray(_data("sigmoid"))
    expected = xpit.sigmoid(x)
    out = target.xp.empty(x.shape, dtype=x.dtype, device=target.device)
    if target.name == "jax":
        _immutable_out(x, out)
        assert_equal(batch.apply("sigmoid", x, chunk_size=50), expected)
        return
    assert batch.apply("sigmoid", x, out=out, chunk_size=50) is out
    assert_equal(out, expected)
    assert_equal(batch.apply("sigmoid", x, chunk_size=50), expected)


def test_bad_arguments():
    x = np.ones((4, 5))
    with pytest.raises(ValueError, match=r"out has shape \(5, 4\) but the input has shape"):
        batch.apply("sigmoid", x, out=np.empty((5, 4)))
    with pytest.raises(TypeError, match="out has dtype int64 but the result is float64"):
        batch.apply("sigmoid", x, out=np.empty((4, 5), dtype=np.int64))
    with pytest.raises(TypeError, match="out has dtype float32 but the result is float64"):
        batch.apply("sigmoid", x, out=np.empty((4, 5), dtype=np.float32))
    read_only = np.empty((4, 5))
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        batch.apply("sigmoid", x, out=read_only)
    with pytest.raises(ValueError, match="out overlaps the input"):
        batch.apply("sigmoid", x[:, :4], out=x[:, 1:])
    with pytest.raises(TypeError, match="out must be a NumPy array for host input"):
        batch.apply("sigmoid", x, out=[0.0] * 20)
    with pytest.raises(ValueError, match="chunk_size must be at least 1, got 0"):
        batch.apply("sigmoid", x, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size must be an integer, got float"):
        batch.apply("sigmoid", x, chunk_size=2.5)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        batch.apply("sigmoid", x, workers=-1)
    with pytest.raises(ValueError, match=r"unknown function 'expit'; expected one of 'sigmoid'"):
        batch.apply("expit", x)
    with pytest.raises(ValueError, match="takes two arrays"):
        batch.apply(xpit.binary_cross_entropy_with_logits, x)
    with pytest.raises(TypeError, match=r"xpit\.batch\.apply: argument 'x' has unsupported"):
        batch.apply("sigmoid", np.ones(3, dtype=complex))


def test_memory_with_out_stays_within_a_few_chunks():
    x = np.random.default_rng(0).normal(size=20_000_000).astype(np.float32)  # 80 MB
    out = np.empty_like(x)
    tracemalloc.start()
    try:
        batch.apply("sigmoid", x, out=out, workers=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"{peak / 2**20:.1f} MiB"


def test_memory_without_out_is_the_output_plus_a_few_chunks():
    x = np.random.default_rng(0).normal(size=10_000_000)  # 80 MB
    tracemalloc.start()
    try:
        y = xpit.sigmoid(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < y.nbytes + 16 * 2**20, f"{(peak - y.nbytes) / 2**20:.1f} MiB over the output"


def test_fallback_in_batch_warns_once_and_equals_numpy():
    if xpit.get_backend().name == "cupy" or _cupy_usable():
        pytest.skip("a CUDA device is usable: no fallback")
    x = _data("sigmoid")
    with pytest.warns(xpit.BackendFallbackWarning) as record:
        result = batch.apply("sigmoid", x, backend="cupy", chunk_size=64)
        batch.apply("sigmoid", x, backend="cupy")
    assert len(record) == 1
    assert_equal(result, xpit.sigmoid(x))


def _cupy_usable():
    from xpit import _registry

    return _registry.probe("cupy")[0]


def test_host_data_streams_through_a_registered_backend_in_chunks():
    moved = []

    def to_device(a):
        moved.append(a.size)
        return np.array(a)

    xpit.register_backend(xpit.Backend(
        name="host-copy", array_types=(), namespace=lambda a: np,
        probe=lambda: (True, "always"), to_device=to_device, to_host=np.asarray,
        version=lambda: "1"))
    x = _data("log_sigmoid", shape=(10, 10))
    out = np.empty((10, 10), order="F")
    result = batch.apply("log_sigmoid", x, backend="host-copy", chunk_size=30, out=out)
    assert result is out and moved == [30, 30, 30, 10]
    with np.errstate(all="ignore"):  # a third-party backend runs the array-API reference
        assert_equal(out, array_api.log_sigmoid(np, x))


def test_progress_bar_when_asked(capsys):
    batch.apply("sigmoid", np.zeros(1000), progress=True, chunk_size=100)
    err = capsys.readouterr().err
    assert "/1.00k" in err and "el/s" in err
    batch.apply("sigmoid", np.zeros(1000))  # stderr is not a terminal: no bar by default
    assert capsys.readouterr().err == ""


# --- chunk planning ----------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 5, 6, 7, 100])
@pytest.mark.parametrize("length", [1, 3, 6, 200])
def test_chunk_slices_cover_exactly_once(n, length):
    covered = [i for sl in chunk_slices(n, length) for i in range(sl.start, sl.stop)]
    assert covered == list(range(n))
    assert all(0 < sl.stop - sl.start <= length for sl in chunk_slices(n, length))


@pytest.mark.parametrize("n_chunks", range(0, 9))
@pytest.mark.parametrize("n_streams", [1, 2, 3])
def test_pipeline_schedule_reuses_a_buffer_only_after_draining_it(n_chunks, n_streams):
    staged, drained, busy = [], [], {}
    for step, chunk, stream in pipeline_schedule(n_chunks, n_streams):
        assert stream == chunk % n_streams
        if step == "stage":
            assert stream not in busy, "a stream's buffers were staged again before draining"
            busy[stream] = chunk
            staged.append(chunk)
        else:
            assert busy.pop(stream) == chunk
            drained.append(chunk)
        assert len(busy) <= n_streams
    assert staged == drained == list(range(n_chunks))
    if n_chunks >= 2 and n_streams >= 2:  # the overlap: chunk 1 is staged before 0 is drained
        steps = list(pipeline_schedule(n_chunks, n_streams))
        assert steps.index(("stage", 1, 1)) < steps.index(("drain", 0, 0))


# --- .npy files --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["<f8", ">f8", "<f4", ">f4", "<f2", "<i4", ">i2", "|u1", "|b1"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_apply_file_equals_apply(tmp_path, dtype, order):
    x = np.asarray(_data("sigmoid", shape=(41, 23), dtype="float64") * 3, order=order)
    with np.errstate(invalid="ignore", over="ignore"):
        x = np.nan_to_num(x).astype(dtype, order=order) if dtype[1] in "iub" else x.astype(
            dtype, order=order)
    np.save(tmp_path / "in.npy", x)
    result = batch.apply_file("softplus", tmp_path / "in.npy", tmp_path / "out.npy",
                              chunk_size=100)
    assert result == tmp_path / "out.npy"
    y = np.load(tmp_path / "out.npy")
    expected = xpit.softplus(x)
    assert y.dtype == (np.float64 if dtype[1] in "iub" else np.dtype(dtype).newbyteorder("="))
    assert y.flags.f_contiguous == (order == "F")
    assert_equal(y, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy", "out.npy"]


def test_apply_file_refuses_to_overwrite_unless_asked(tmp_path):
    np.save(tmp_path / "in.npy", np.zeros(3))
    (tmp_path / "out.npy").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        batch.apply_file("sigmoid", tmp_path / "in.npy", tmp_path / "out.npy")
    assert (tmp_path / "out.npy").read_bytes() == b"keep me"
    batch.apply_file("sigmoid", tmp_path / "in.npy", tmp_path / "out.npy", overwrite=True)
    assert_equal(np.load(tmp_path / "out.npy"), np.full(3, 0.5))
    batch.apply_file("sigmoid", tmp_path / "in.npy", tmp_path / "in.npy", overwrite=True)
    assert_equal(np.load(tmp_path / "in.npy"), np.full(3, 0.5))


def test_apply_file_bad_inputs(tmp_path):
    src, dst = tmp_path / "in.npy", tmp_path / "out.npy"
    with pytest.raises(FileNotFoundError, match=r"source file .*in.npy' does not exist"):
        batch.apply_file("sigmoid", src, dst)
    src.write_text("not numpy")
    with pytest.raises(ValueError, match=r"in.npy' is not a \.npy file"):
        batch.apply_file("sigmoid", src, dst)
    np.save(src, np.ones(3, dtype=complex))
    with pytest.raises(TypeError, match="holds complex128 data"):
        batch.apply_file("sigmoid", src, dst)
    np.save(src, np.array(["a", "b"]))
    with pytest.raises(TypeError, match="holds <U1 data"):
        batch.apply_file("sigmoid", src, dst)
    np.save(src, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(TypeError, match="holds object data"):
        batch.apply_file("sigmoid", src, dst)
    np.save(src, np.zeros(1000))
    src.write_bytes(src.read_bytes()[:-800])
    with pytest.raises(ValueError, match="is truncated: 800 bytes of data are missing"):
        batch.apply_file("sigmoid", src, dst)
    with pytest.raises(FileNotFoundError, match="the folder of"):
        batch.apply_file("sigmoid", src, tmp_path / "no" / "out.npy")
    with pytest.raises(IsADirectoryError):
        batch.apply_file("sigmoid", src, tmp_path)
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy"]


def test_apply_file_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    src, dst = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, np.zeros(1000))
    dst.write_bytes(b"old")
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-file
        return xpit._family.elementwise(*args, **kwargs)

    monkeypatch.setattr(batch, "elementwise", failing)
    with pytest.raises(KeyboardInterrupt):
        batch.apply_file("sigmoid", src, dst, chunk_size=100, overwrite=True)
    assert dst.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy", "out.npy"]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's VmHWM")
def test_apply_file_keeps_memory_bounded_for_a_large_file(tmp_path):
    """A 512 MiB file is processed with a peak resident set under 256 MB.

    The peak is the kernel's VmHWM of a fresh process (ru_maxrss would carry over
    the high-water mark of the forked pytest process across exec).
    """
    code = textwrap.dedent(f"""
        import re, numpy as np, xpit

        def peak_mb():
            with open("/proc/self/status") as f:
                return int(re.search(r"VmHWM:\\s+(\\d+) kB", f.read()).group(1)) // 1024

        src = {str(tmp_path / "big.npy")!r}
        with open(src, "wb") as f:
            n = 64 * 2**20  # float64: 512 MiB
            np.lib.format.write_array_header_1_0(f, {{"descr": "<f8", "fortran_order": False,
                                                      "shape": (n,)}})
            block = np.linspace(-50, 50, 2**20)
            for _ in range(64):
                block.tofile(f)
        before = peak_mb()
        xpit.batch.apply_file("sigmoid", src, {str(tmp_path / "out.npy")!r}, progress=False)
        peak = peak_mb()
        out = np.load({str(tmp_path / "out.npy")!r}, mmap_mode="r")
        ok = np.array_equal(out[-2**20:], xpit.sigmoid(block))
        print(before, peak, ok)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    before_mb, peak_mb, ok = result.stdout.split()
    assert ok == "True"
    assert int(peak_mb) < 256, f"peak RSS {peak_mb} MB (before the call: {before_mb} MB)"


def test_apply_file_progress_in_bytes(tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.zeros(4096))
    batch.apply_file("sigmoid", tmp_path / "in.npy", tmp_path / "out.npy", progress=True)
    assert "/32.0k" in capsys.readouterr().err


# --- the CLI -----------------------------------------------------------------------------------

def test_cli_apply(tmp_path, capsys):
    x = _data("logit", shape=(300,))
    np.save(tmp_path / "p.npy", x)
    args = ["apply", "logit", str(tmp_path / "p.npy"), str(tmp_path / "z.npy")]
    assert main([*args, "--chunk-size", "64", "--workers", "2", "--no-progress"]) == 0
    assert_equal(np.load(tmp_path / "z.npy"), xpit.logit(x))
    assert main(args) == 1
    assert capsys.readouterr().err == (f"xpit apply: error: {tmp_path / 'z.npy'} already "
                                       "exists; use --force to replace it\n")
    assert main([*args, "--force"]) == 0


@pytest.mark.parametrize(("setup", "message"), [
    (None, "source file '{src}' does not exist"),
    ("text", "'{src}' is not a .npy file"),
    ("complex", "'{src}' holds complex128 data; expected float16, float32, float64"),
])
def test_cli_apply_errors_are_one_line_without_traceback(tmp_path, setup, message):
    src = tmp_path / "in.npy"
    if setup == "text":
        src.write_text("hello")
    elif setup == "complex":
        np.save(src, np.ones(2, dtype=complex))
    result = subprocess.run([sys.executable, "-m", "xpit", "apply", "sigmoid", str(src),
                             str(tmp_path / "out.npy")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith(f"xpit apply: error: {message.format(src=src)}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_cli_apply_warns_in_one_line_when_falling_back(tmp_path):
    if _cupy_usable():
        pytest.skip("a CUDA device is usable: no fallback")
    np.save(tmp_path / "in.npy", np.zeros(3))
    env = {k: v for k, v in os.environ.items() if k != "XPIT_BACKEND"}
    result = subprocess.run([sys.executable, "-m", "xpit", "apply", "sigmoid",
                             str(tmp_path / "in.npy"), str(tmp_path / "out.npy"), "--backend",
                             "cupy"], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0
    assert result.stderr.startswith("xpit apply: warning: xpit: backend 'cupy'")
    assert "Traceback" not in result.stderr


# --- Dask --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cluster's own start-up chatter
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.parametrize("func", FUNCTIONS)
def test_dask_arrays_are_lazy_and_equal_numpy_on_a_cluster(dask_client, func):
    import dask.array as da

    x = _data(func, shape=(60, 50))
    dx = da.from_array(x, chunks=(16, 20))
    result = getattr(xpit, func)(dx)
    assert isinstance(result, da.Array) and result.dtype == np.float64
    assert_equal(result.compute(), getattr(xpit, func)(x))
    with np.errstate(all="raise"):  # the blocks run inside xpit's own errstate
        result.compute()


def test_dask_two_array_functions(dask_client):
    import dask.array as da

    z, t = _data("sigmoid", shape=(40, 30)), np.random.default_rng(1).uniform(0, 1, (40, 30))
    dz, dt = da.from_array(z, chunks=(10, 30)), da.from_array(t, chunks=(20, 15))
    for reduction in ("none", "sum", "mean"):
        got = xpit.binary_cross_entropy_with_logits(dz, dt, reduction=reduction)
        np.testing.assert_allclose(got.compute(), xpit.binary_cross_entropy_with_logits(
            z, t, reduction=reduction), rtol=1e-12)
    s = xpit.sigmoid(z)
    assert_equal(xpit.sigmoid_backward(da.from_array(s, chunks=7), dt).compute(),
                 xpit.sigmoid_backward(s, t))
    w, p = np.linspace(0.5, 2.0, 40)[:, None], np.linspace(1.0, 9.0, 30)
    for reduction in ("none", "mean"):  # the weights' blocks follow the logits'
        got = xpit.binary_cross_entropy_with_logits(
            dz, dt, weight=da.from_array(w, chunks=(7, 1)), pos_weight=da.from_array(p, chunks=30),
            reduction=reduction)
        np.testing.assert_allclose(got.compute(), xpit.binary_cross_entropy_with_logits(
            z, t, weight=w, pos_weight=p, reduction=reduction), rtol=1e-12)


def test_dask_float32_and_backend_conflict():
    da = pytest.importorskip("dask.array")
    x = da.from_array(np.linspace(-3, 3, 10, dtype=np.float32), chunks=3)
    assert xpit.softplus(x).dtype == np.float32
    with pytest.raises(ValueError, match=r"conflicts with argument 'x' .*dask.array array"):
        xpit.sigmoid(x, backend="numpy")
    with pytest.raises(ValueError, match="out= is not supported for Dask arrays"):
        batch.apply("sigmoid", x, out=x)


def test_numpy_pool_threads_run_the_chunks(monkeypatch):
    import threading

    seen, worker_ran = set(), threading.Event()
    real = numpy_backend.chunk_kernel

    def spy_on(name):
        kernel = real(name)

        def spy(*args):
            thread = threading.current_thread().name
            seen.add(thread.split("_")[0])
            if thread == "MainThread":  # hold the caller back until a pool thread took one
                assert worker_ran.wait(timeout=30), "no pool thread ran a chunk"
            else:
                worker_ran.set()
            return kernel(*args)

        return spy

    monkeypatch.setattr(numpy_backend, "chunk_kernel", spy_on)
    x = np.linspace(-5, 5, 1 << 16)
    counted = []  # with a progress callback, Python's pool takes the chunks
    assert_equal(numpy_backend_apply(x, workers=2, advance=counted.append), xpit.sigmoid(x))
    assert seen == {"MainThread", "xpit-worker"} and sum(counted) == x.size


def numpy_backend_apply(x, **options):
    out = np.empty(x.shape, x.dtype.newbyteorder("=") if x.dtype.byteorder == ">" else x.dtype)
    numpy_backend.compute("sigmoid", x, out, chunk_size=1024, **options)
    return out


def test_without_progress_the_extension_takes_the_chunks(monkeypatch):
    """Without a progress callback, contiguous arrays of one dtype go to the extension's entry
    for raw memory (its own threads) with the chunk length and thread count asked for; other
    layouts, dtypes or a progress callback go through Python's pool. The bits are the same."""
    module = numpy_backend.compiled()[0]
    calls = []

    class Spy:
        def __getattr__(self, name):
            return getattr(module, name)

        def _contiguous(self, *args):
            calls.append(args[:6])
            return module._contiguous(*args)

    x = np.linspace(-5, 5, 1 << 16)
    want = xpit.sigmoid(x)
    monkeypatch.setattr(numpy_backend, "compiled", lambda: (Spy(), "spied"))
    assert_equal(batch.apply("sigmoid", x, chunk_size=1024, workers=3), want)
    assert calls == [("sigmoid", "d", x.size, 1024, 3, 0)]
    for other in (x[::2], x.astype(">f8"), x.reshape(256, 256).T):  # strided, swapped, mixed
        calls.clear()
        assert_equal(numpy_backend_apply(other, workers=2), module.sigmoid(other))
        assert calls == []
    assert_equal(numpy_backend_apply(x, workers=2, advance=lambda n: None), want)
    assert calls == []


@pytest.mark.parametrize("func", FUNCTIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(), (1,), (3,), (2, 4)])
def test_tiny_inputs_agree_between_one_shot_and_batch(func, dtype, shape):
    x = _data(func, shape=shape, dtype=dtype)
    expected = getattr(xpit, func)(x)
    assert np.shape(expected) == shape and np.asarray(expected).dtype == dtype
    out = np.empty(shape, dtype)
    assert_equal(batch.apply(func, x, out=out), np.asarray(expected))
    assert_equal(batch.apply(func, x, chunk_size=1), np.asarray(expected))


def test_batch_on_other_libraries_zero_dimensional(target):
    x = target.asarray(0.5)
    out = target.xp.empty((), dtype=x.dtype, device=target.device)
    if target.name == "jax":
        _immutable_out(x, out)
        assert_equal(batch.apply("logit", x, chunk_size=1), xpit.logit(x))
        return
    assert batch.apply("logit", x, out=out) is out
    assert_equal(out, xpit.logit(x))
    assert_equal(batch.apply("logit", x, chunk_size=1), xpit.logit(x))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_forked_child_computes_with_threads():
    """After the parent has started its pool, a forked child (a DataLoader worker ...) gets a
    pool of its own instead of waiting forever on the parent's threads."""
    code = ("import os, numpy as np, xpit\n"
            "x = np.linspace(-5, 5, 4_000_000)\n"
            "expected = xpit.sigmoid(x)\n"  # starts the pool
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os._exit(0 if np.array_equal(xpit.sigmoid(x), expected) else 3)\n"
            "_, status = os.waitpid(pid, 0)\n"
            "raise SystemExit(os.waitstatus_to_exitcode(status))\n")
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], timeout=120,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
