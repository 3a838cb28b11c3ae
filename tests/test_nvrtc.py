"""The GPU kernels, compiled to PTX here, without a GPU: IEEE round-to-nearest operations only.

The CuPy kernels call the shared header ``xpit/kernels/family.h`` (the NumPy ufuncs
compile the same one), so the GPU gives the CPU's bits only if NVRTC turns every
operation of the header into its IEEE round-to-nearest instruction: no contraction
into an fma the source did not write (``--fmad=false``), no flush to zero, no
approximate division, exponential or logarithm, and no CUDA math library
(``exp``, ``log1p``: correctly rounded is not promised, so CUDA's bits are not glibc's).

NVRTC comes from CuPy's bindings and the ``nvidia-cuda-nvrtc-cu12`` wheel; float16
kernels need ``cuda_fp16.h`` (the ``nvidia-cuda-runtime-cu12`` wheel), as CuPy's
float16 does. ``nvcc``, where it is on PATH, is a second, independent compiler.
Where a GPU is at hand, tests/test_gpu.py checks the bits themselves.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from collections import Counter

import pytest

from xpit._backends import cupy as cupy_backend

FUNCTIONS = list(cupy_backend.KERNELS)
DTYPES = list(cupy_backend.FUSED_DTYPES)

# --- reading PTX -----------------------------------------------------------------------------

_FLOAT_TYPES = {"f16": 16, "f16x2": 16, "bf16": 16, "bf16x2": 16, "f32": 32, "f64": 64}
_INT_TYPE = re.compile(r"^[subf]\d+$|^b\d+$")
_ROUNDED = {"add", "sub", "mul", "div", "fma", "mad", "rcp", "sqrt"}  # need .rn on floats
_APPROXIMATE_ONLY = {"ex2", "lg2", "sin", "cos", "rsqrt", "tanh"}
_INTEGER_ROUNDING = {"rni", "rzi", "rmi", "rpi"}  # round to an integer: exact
_ARITHMETIC = _ROUNDED | _APPROXIMATE_ONLY


def instructions(ptx: str) -> list[str]:
    """The opcodes of a PTX listing, in order (``fma.rn.f64``, ``cvt.rn.f16.f64``, ...)."""
    ops = []
    for line in ptx.splitlines():
        line = line.split("//", 1)[0].strip().strip("{}").strip()
        line = re.sub(r"^@!?%\w+\s+", "", line)  # a predicate guard
        if not line or line.startswith((".", ")", "$")) or line.endswith(":"):
            continue
        op = line.split()[0].rstrip(";")
        if re.fullmatch(r"[a-z][a-z0-9_.]*", op):
            ops.append(op)
    return ops


def violations(op: str) -> list[str]:
    """Why one PTX instruction is not an IEEE round-to-nearest operation (empty if it is)."""
    base, *mods = op.split(".")
    floats = [m for m in mods if m in _FLOAT_TYPES]
    found = [f"{op}: .{m}" for m in ("approx", "ftz", "full") if m in mods]
    if base == "call":
        found.append(f"{op}: a call (the header's functions are inlined; no libdevice)")
    if floats and "sat" in mods:
        found.append(f"{op}: .sat clamps")
    if floats and base in _APPROXIMATE_ONLY:
        found.append(f"{op}: approximate by definition")
    if floats and base in _ROUNDED and "rn" not in mods:
        found.append(f"{op}: no .rn")
    if base == "cvt":
        dst, src = [m for m in mods if m in _FLOAT_TYPES or _INT_TYPE.match(m)][-2:]
        if dst in _FLOAT_TYPES and src in _FLOAT_TYPES:
            if _FLOAT_TYPES[dst] < _FLOAT_TYPES[src] and "rn" not in mods:
                found.append(f"{op}: narrowing without .rn")
            if _FLOAT_TYPES[dst] == _FLOAT_TYPES[src] and not _INTEGER_ROUNDING & set(mods):
                found.append(f"{op}: a float to float conversion that is not a rounding to "
                             "an integer")
        elif dst in _FLOAT_TYPES and "rn" not in mods:
            found.append(f"{op}: integer to float without .rn")
    return found


def check_ptx(ptx: str, kernels: list[str]) -> Counter[str]:
    """Assert that ``ptx`` holds exactly ``kernels`` and IEEE round-to-nearest operations only;
    return the count of each instruction."""
    entries = re.findall(r"^\s*\.visible\s+\.entry\s+(\w+)\s*\(", ptx, flags=re.M)
    assert sorted(entries) == sorted(kernels)
    assert ".entry" not in re.sub(r"^\s*\.visible\s+\.entry\s", "", ptx, flags=re.M)
    assert not re.search(r"\.func\b", ptx), "a function was not inlined, or a library linked"
    ops = instructions(ptx)
    bad = [v for op in ops for v in violations(op)]
    assert not bad, "\n".join(bad)
    counts = Counter(ops)
    read = sum(counts[f"{op}.rn.f64"] for op in ("fma", "mul", "div", "add", "sub"))
    assert read > 0, "no double arithmetic read"
    return counts


@pytest.mark.parametrize(("op", "ok"), [
    ("fma.rn.f64", True), ("mul.rn.f32", True), ("rcp.rn.f64", True), ("div.rn.f64", True),
    ("cvt.rn.f16.f64", True), ("cvt.f64.f32", True), ("cvt.rni.f64.f64", True),
    ("cvt.rzi.s32.f64", True), ("cvt.rn.f64.s32", True), ("add.s64", True),
    ("mul.wide.u32", True), ("abs.f64", True), ("setp.ge.f64", True), ("selp.f64", True),
    ("fma.rm.f32", False), ("mul.f64", False), ("mad.f32", False), ("mad.lo.s32", True),
    ("rcp.approx.ftz.f64", False), ("ex2.approx.ftz.f32", False), ("div.full.f32", False),
    ("div.approx.f32", False), ("setp.lt.ftz.f32", False), ("cvt.sat.f32.f32", False),
    ("cvt.f32.f64", False), ("call.uni", False), ("lg2.approx.f32", False),
])
def test_the_ptx_reader(op, ok):
    assert (violations(op) == []) is ok


# --- NVRTC -----------------------------------------------------------------------------------


@functools.cache
def _nvrtc() -> tuple[object, tuple[str, ...]]:
    """CuPy's NVRTC bindings and the two architectures compiled for, or a skip."""
    try:
        from cupy_backends.cuda.libs import nvrtc

        archs = nvrtc.getSupportedArchs()
    except Exception as exc:  # no CuPy, or no libnvrtc.so.12 to load
        pytest.skip(f"NVRTC cannot be loaded ({exc!r}): install cupy-cuda12x and "
                    "nvidia-cuda-nvrtc-cu12")
    usable = [a for a in archs if a >= 75]  # older ones are deprecated
    chosen = {min(usable), 90 if 90 in usable else max(usable)}
    return nvrtc, tuple(f"compute_{a}" for a in sorted(chosen))


@functools.cache
def _cuda_include() -> str | None:
    """The directory of ``cuda_fp16.h``, found the way CuPy finds it."""
    try:
        from cuda.pathfinder import find_nvidia_header_directory

        return find_nvidia_header_directory("cudart")
    except Exception:
        return None


def _options(dtype: str) -> tuple[str, ...]:
    if dtype != "float16":
        return cupy_backend.NVRTC_OPTIONS
    include = _cuda_include()
    if include is None:
        pytest.skip("float16 kernels need cuda_fp16.h, as CuPy's float16 does: install "
                    "nvidia-cuda-runtime-cu12")
    return (*cupy_backend.NVRTC_OPTIONS, f"-I{include}")


def nvrtc_compile(source: str, options: tuple[str, ...], arch: str) -> str:
    """PTX from NVRTC, or an AssertionError with its log."""
    nvrtc, _ = _nvrtc()
    program = nvrtc.createProgram(source, "xpit_kernel.cu", (), ())
    try:
        try:
            nvrtc.compileProgram(program, (*options, f"-arch={arch}"))
        except nvrtc.NVRTCError as exc:
            raise AssertionError(f"NVRTC failed: {exc}\n{nvrtc.getProgramLog(program)}") from None
        return nvrtc.getPTX(program).decode().rstrip("\0")
    finally:
        nvrtc.destroyProgram(program)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", FUNCTIONS)
def test_nvrtc_kernels_use_round_to_nearest_ieee_operations_only(func, dtype):
    options = _options(dtype)
    _, archs = _nvrtc()
    for arch in archs:
        ptx = nvrtc_compile(cupy_backend.kernel_source(func, dtype), options, arch)
        counts = check_ptx(ptx, [cupy_backend.kernel_name(func, dtype)])
        # Computed in double (float16 included: no half arithmetic), rounded once to the dtype.
        half = [op for op in counts if op.split(".")[0] in _ARITHMETIC
                and {"f16", "f16x2", "bf16", "bf16x2"} & set(op.split("."))]
        assert not half, f"half-precision arithmetic: {half}"
        if dtype != "float64":
            narrow = {"float16": "cvt.rn.f16.f64", "float32": "cvt.rn.f32.f64"}[dtype]
            assert counts[narrow] >= 1


# Every function of the CUDA math library a formula could reach for. The header must
# build these from IEEE operations itself: CUDA's versions are not glibc's, and
# exp(double) even compiles to fma.rn.f64 only, which no PTX check can tell apart.
_MATH_LIBRARY = """exp exp2 exp10 expm1 log log2 log10 log1p logb pow sqrt rsqrt cbrt rcbrt hypot
sin cos tan sinh cosh tanh asin acos atan atan2 asinh acosh atanh erf erfc erfinv erfcinv
lgamma tgamma sincos sinpi cospi fdim fmod remainder remquo""".split()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_header_calls_no_cuda_math_library_function(dtype):
    names = [n for base in _MATH_LIBRARY for n in (base, base + "f", "__" + base + "f")]
    poison = "".join(f"#define {n}(...) xpit_calls_the_cuda_math_library_{n}\n" for n in names)
    source = poison + cupy_backend.cuda_source(dtype)
    _, archs = _nvrtc()
    check_ptx(nvrtc_compile(source, _options(dtype), archs[0]),
              [cupy_backend.kernel_name(f, dtype) for f in FUNCTIONS])


def test_the_poisoned_names_do_catch_a_call():
    _, archs = _nvrtc()
    source = "#define exp(...) xpit_calls_the_cuda_math_library_exp\n" + \
        'extern "C" __global__ void k(double* x) { x[0] = exp(x[0]); }\n'
    with pytest.raises(AssertionError, match="xpit_calls_the_cuda_math_library_exp"):
        nvrtc_compile(source, cupy_backend.NVRTC_OPTIONS, archs[0])


def test_without_fmad_false_nvrtc_contracts_which_the_check_would_catch():
    """The option matters: the same source contracts ``a * b + c`` without it."""
    _, archs = _nvrtc()
    source = 'extern "C" __global__ void k(double* x) { x[0] = x[0] * x[1] + x[2]; }\n'
    assert "fma.rn.f64" in instructions(nvrtc_compile(source, (), archs[0]))
    ops = instructions(nvrtc_compile(source, cupy_backend.NVRTC_OPTIONS, archs[0]))
    assert "fma.rn.f64" not in ops and "mul.rn.f64" in ops and "add.rn.f64" in ops


def _cupy_translation_unit(func: str, dtype: str, scalar_last: bool = False
                           ) -> tuple[str, tuple[str, ...]]:
    """The source and NVRTC options CuPy itself compiles for ``fused_kernel(func, dtype)`` on
    1-D arrays (the last input a scalar if asked), from CuPy's internals: no public API
    gives them without a GPU."""
    cupy = pytest.importorskip("cupy")
    try:
        from cupy._core import _kernel, core

        kernel = cupy_backend.fused_kernel(func, dtype)
        array = _kernel._ArgInfo(1, cupy.ndarray, cupy.dtype(dtype), 1, True, True)
        scalar = _kernel._ArgInfo(3, cupy.dtype(dtype).type, cupy.dtype(dtype), 0, True, True)
        indexer = _kernel._ArgInfo(2, cupy._core._carray.Indexer, None, 1, True, True)
        inputs = [array] * kernel.nin
        if scalar_last:
            inputs[-1] = scalar
        code = _kernel._get_elementwise_kernel_code(
            (*inputs, array, indexer), _kernel._TypeMap(()), kernel.params,
            kernel.operation, kernel.name, kernel.preamble, "", "", ())
        options = core.assemble_cupy_compiler_options(cupy_backend.NVRTC_OPTIONS)
        code = "".join(f"#include <{h}>\n" for h in core._cupy_header_list) + code
    except Exception as exc:  # CuPy's internals moved: the standalone sources still count
        pytest.skip(f"CuPy's kernel source cannot be generated here: {exc!r}")
    return code, options


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("func", "scalar_last"),
                         [(f, False) for f in FUNCTIONS] + [("sigmoid_backward", True)])
def test_the_translation_unit_cupy_compiles_has_the_same_checks(func, scalar_last, dtype):
    """CuPy's own kernel source, with its headers, float16 class and options, passes too
    (``fused("sigmoid_backward", s)`` passes grad as a scalar 1)."""
    code, options = _cupy_translation_unit(func, dtype, scalar_last)
    assert (f"const {cupy_backend._CTYPES[dtype]} x1," in code) is scalar_last
    assert cupy_backend.operation(func, dtype) in code
    assert cupy_backend.CUDA_PREFIX + cupy_backend.header_source() in code
    assert "--fmad=false" in options
    _, archs = _nvrtc()
    counts = check_ptx(nvrtc_compile(code, options, archs[-1]),
                       [cupy_backend.kernel_name(func, dtype)])
    if dtype != "float64":
        assert counts[{"float16": "cvt.rn.f16.f64", "float32": "cvt.rn.f32.f64"}[dtype]] >= 1


# --- nvcc, a second compiler, where it is on PATH --------------------------------------------


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
@pytest.mark.parametrize("dtype", DTYPES)
def test_nvcc_agrees_all_kernels_of_a_dtype(dtype, tmp_path):
    source = tmp_path / f"xpit_{dtype}.cu"
    source.write_text(cupy_backend.cuda_source(dtype), encoding="utf-8")
    ptx = tmp_path / f"xpit_{dtype}.ptx"
    result = subprocess.run(
        ["nvcc", "-ptx", *cupy_backend.NVRTC_OPTIONS, "-arch=compute_90", str(source),
         "-o", str(ptx)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    check_ptx(ptx.read_text(), [cupy_backend.kernel_name(f, dtype) for f in FUNCTIONS])


# --- the sources and the CuPy kernels --------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", FUNCTIONS)
def test_a_kernel_is_the_header_and_one_call_of_it(func, dtype):
    header = cupy_backend.header_source()
    c_name, nin, _ = cupy_backend.KERNELS[func]
    body = cupy_backend.operation(func, dtype)
    # One call of a header function on the inputs, at most a cast around it: no formula.
    call = rf"{c_name}f?\((\(double\))?x0(, (\(double\))?x[12])*\)"
    assert re.fullmatch(rf"y = (\((float16|float|double)\)\()?{call}\)?;", body), body
    assert body.count("(double)x") in (0, nin)
    called = re.search(r"(xpit_\w+)\(", body).group(1)
    assert re.search(rf"XPIT_FUNC\s+(float|double)\s+{called}\s*\(", header), called
    source = cupy_backend.kernel_source(func, dtype)
    assert source.startswith(cupy_backend.CUDA_PREFIX + header)
    assert source.count(body) == 1 and source.count("__global__") == 1


def test_every_header_function_named_is_defined_in_the_header():
    header = cupy_backend.header_source()
    for c_name, nin, has_float in cupy_backend.KERNELS.values():
        names = [(c_name, "double")] + ([(c_name + "f", "float")] if has_float else [])
        for name, ctype in names:
            params = r",\s*".join([rf"{ctype}\s+\w+"] * nin)
            assert re.search(rf"XPIT_FUNC\s+{ctype}\s+{name}\s*\(\s*{params}\s*\)", header), name


def test_the_cuda_prefix_only_declares_device_functions():
    assert cupy_backend.CUDA_PREFIX == "#define XPIT_FUNC static __device__ __forceinline__\n"
    assert "--fmad=false" in cupy_backend.NVRTC_OPTIONS


def test_the_header_is_the_file_shipped_in_the_package():
    from importlib import resources

    shipped = resources.files("xpit") / "kernels" / "family.h"
    assert shipped.is_file()
    assert cupy_backend.header_source() == shipped.read_text(encoding="utf-8")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", FUNCTIONS)
def test_cupy_kernels_are_built_without_a_gpu_from_the_header(func, dtype):
    pytest.importorskip("cupy")
    kernel = cupy_backend.fused_kernel(func, dtype)
    assert kernel.preamble == cupy_backend.CUDA_PREFIX + cupy_backend.header_source()
    assert kernel.operation == cupy_backend.operation(func, dtype)
    assert kernel.name == cupy_backend.kernel_name(func, dtype)
    assert kernel.nin == cupy_backend.KERNELS[func][1] and kernel.nout == 1
    params = [(p.name, str(p.dtype)) for p in kernel.params if p.dtype is not None]
    assert params == [*((f"x{k}", dtype) for k in range(kernel.nin)), ("y", dtype)]
    assert kernel.kwargs["options"] == cupy_backend.NVRTC_OPTIONS
    assert cupy_backend.fused_kernel(func, dtype) is kernel  # built once


def test_fused_refuses_what_it_has_no_kernel_for():
    with pytest.raises(ValueError, match="no fused CuPy kernel for 'expit'"):
        cupy_backend.kernel_source("expit", "float64")
    with pytest.raises(TypeError, match="for dtype bfloat16"):
        cupy_backend.operation("sigmoid", "bfloat16")


def test_importing_xpit_and_reading_the_sources_never_imports_cupy():
    code = ("import sys, xpit; from xpit._backends import cupy as c; "
            "[c.kernel_source(f, d) for f in c.KERNELS for d in c.FUSED_DTYPES]; "
            "assert 'cupy' not in sys.modules, 'cupy imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
