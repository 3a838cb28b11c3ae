"""The public functions: validate, resolve the namespace once, call the kernel, hand back.

Each function accepts any array-API array (computed by its own library on its
own device, returned as the same kind of array), NumPy arrays, Python or NumPy
scalars and sequences (host data, computed by the selected backend and returned
as NumPy). ``backend=`` picks the backend for host data for this one call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from xpit import _config
from xpit._backends import numpy as numpy_backend
from xpit._chunks import CPU_SPLIT_BYTES, usable_cores
from xpit._compute import chunked_reference, compute_array, fused, run_reference, takes_fused
from xpit._config import host_is_default
from xpit._dispatch import Route, resolve
from xpit._dtypes import float_dtypes
from xpit.kernels import reference

if TYPE_CHECKING:  # what the public functions give back for what they are given
    from numpy.typing import NDArray

    from xpit._typing import ArrayT, FloatT, HostData, Real, Unary

Array = Any
_REDUCTIONS = ("mean", "sum", "none")

# The one-array functions, by name, with the name of their argument: these can
# be batched, chunked and written into ``out=``.
ELEMENTWISE = {"sigmoid": "x", "sigmoid_grad": "x", "log_sigmoid": "x", "softplus": "x",
               "logit": "p", "sigmoid_backward": "s", "log1mexp": "x", "logexpm1": "y",
               "logitexp": "x"}


def _block_backend(block: Array) -> str | None:
    # A NumPy block belongs to the Dask array, not to the host-data selection:
    # it is computed by NumPy even where XPIT_BACKEND=cupy.
    return "numpy" if isinstance(block, np.ndarray) else None


def _dask_block(func: str, block: Array) -> Array:
    """One block of a Dask array, through the eager code path (picklable for clusters)."""
    return elementwise(func, block, _block_backend(block))


def _dask_binary_block(func: str, options: dict[str, Any], weight_names: tuple[str, ...],
                       a: Array, b: Array, *weights: Array) -> Array:
    """One pair of blocks (and the loss weights' blocks), through the public function."""
    options = options | dict(zip(weight_names, weights, strict=True))
    return globals()[func](a, b, backend=_block_backend(a), **options)


def _check_out(func: str, out: Array, x: Array, dtype: Any, route: Route) -> None:
    """``out`` must be a writable array of x's library, device and shape, in the result dtype."""
    if route.backend is not None:  # host data: out is a NumPy array
        if not isinstance(out, np.ndarray):
            raise TypeError(f"xpit.{func}: out must be a NumPy array for host input, got "
                            f"{type(out).__name__}")
        if not out.flags.writeable:
            raise ValueError(f"xpit.{func}: out is read-only")
        if np.may_share_memory(out, x) and not (
                out.__array_interface__["data"] == x.__array_interface__["data"]
                and out.strides == x.strides):
            raise ValueError(f"xpit.{func}: out overlaps the input without being the input itself; "
                             "pass the input as out to work in place, or a separate array")
    elif _is_jax(out):
        raise TypeError(f"xpit.{func}: out cannot be a JAX array: JAX arrays are immutable; "
                        "leave out=None and use the returned array")
    else:
        resolve(func, {"x": x, "out": out}, None)  # same library and device, or a ValueError
    if tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"xpit.{func}: out has shape {tuple(out.shape)} but the input has shape "
                         f"{tuple(x.shape)}")
    if out.dtype != dtype:
        raise TypeError(f"xpit.{func}: out has dtype {out.dtype} but the result is {dtype}; "
                        f"pass an array of dtype {dtype}")


def elementwise(func: str, x: Array, backend: str | None = None, *, out: Array | None = None,
                chunk_size: int | None = None, workers: int | None = None,
                advance: Callable[[int], object] | None = None, caller: str | None = None
                ) -> Array:
    """The one code path of every one-array function, one-shot or batched.

    NumPy data takes NumPy's fast path (chunked and threaded; see
    :mod:`xpit._backends.numpy` for how it relates to the reference); host data
    for another backend is moved there, in chunks when ``chunk_size`` or ``out``
    asks for it; a CuPy array runs one fused kernel; any other array runs the
    array-API kernel in its own library; a Dask array maps it over its blocks.
    """
    name = caller or func
    arg = ELEMENTWISE[func]
    route, arrays = resolve(name, {arg: x}, backend)
    a = arrays[arg]
    out_dtype, work = float_dtypes(name, arg, route.xp, a.dtype, route.device)
    if route.name == "dask.array":
        from xpit import _dask

        if out is not None:
            raise ValueError(f"xpit.{name}: out= is not supported for Dask arrays, which are lazy")
        return _dask.map_elementwise(functools.partial(_dask_block, func), a, out_dtype)
    if out is not None:
        _check_out(name, out, a, out_dtype, route)
    backend_rec = route.backend
    if backend_rec is not None and backend_rec.name == "numpy":
        result = out if out is not None else np.empty_like(a, dtype=out_dtype)
        numpy_backend.compute(func, a, result, chunk_size=chunk_size,
                              workers=workers or usable_cores(), advance=advance)
        return result if out is not None else route.finish(result)
    if out is None and chunk_size is None:
        y = compute_array(route, func, a, work, out_dtype)
        if advance is not None:
            advance(a.size)
        return route.finish(y)
    return chunked_reference(func, route, a, out, out_dtype, work, chunk_size, advance)


def _torch_ops() -> Any:
    """The PyTorch custom operators (:mod:`xpit._backends.torch`), imported on first need."""
    from xpit._backends import torch as torch_backend

    return torch_backend


def _is_torch(x: Any) -> bool:
    # The first check of a public function: cheap, imports nothing, and plain enough for
    # torch.compile's Dynamo to evaluate (type(x) of a traced tensor is torch.Tensor).
    return type(x).__module__.startswith("torch")


def _jax_ops() -> Any:
    """The JAX custom_jvp functions (:mod:`xpit._backends.jax`), imported on first need."""
    from xpit._backends import jax as jax_backend

    return jax_backend


def _is_jax(x: Any) -> bool:
    # Cheap and importing nothing, like _is_torch: concrete arrays are jaxlib types, tracers
    # (under jit, grad, vmap) jax._src types. A Python float is host data, never JAX.
    return type(x).__module__.startswith(("jax.", "jaxlib."))


def _small_inputs_first(func: Callable[..., Array]) -> Unary:
    """Give a public one-array function a fast lane for a Python float or a small array.

    When host data goes to NumPy by default, a Python float or a native float32/float64
    NumPy array that one thread computes (below ``CPU_SPLIT_BYTES``) skips the
    dispatcher for one call of the compiled ufunc (the dispatcher costs a few
    microseconds, the call 0.2): the same call the chunked path makes, so the same bits.
    A floating torch tensor goes to xpit's PyTorch custom operator of that name
    (:mod:`xpit._backends.torch`): the compiled kernels with the family's own
    gradients, opaque to ``torch.compile``. A floating JAX array or tracer goes to xpit's
    ``jax.custom_jvp`` function of that name (:mod:`xpit._backends.jax`).
    """
    name = func.__name__
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)  # singletons: compared by identity
    ufunc = None

    @functools.wraps(func)
    def fast(x: Array, /, *, backend: str | None = None) -> Array:
        nonlocal ufunc
        if backend is None and (type(x) is float or (
                type(x) is np.ndarray and x.nbytes < CPU_SPLIT_BYTES  # what one thread computes
                and ((dtype := x.dtype) is f64 or dtype is f32))) and (
                _config.host_default or host_is_default()):
            if ufunc is None:
                module = numpy_backend.compiled()[0]
                if module is None:  # not built: the reference, through the dispatcher
                    return func(x, backend=backend)
                ufunc = getattr(module, name)
            return ufunc(x)
        if _is_torch(x) and backend is None and (ops := _torch_ops()).takes(x):
            return ops.call(name, x)  # differentiable, and an operator for torch.compile
        if _is_jax(x) and backend is None and (ops := _jax_ops()).takes(x):
            return ops.UNARY[name](x)  # a custom_jvp function: grad, jit and vmap
        return func(x, backend=backend)

    return fast


def _check_broadcast(func: str, weights: dict[str, Array], shape: tuple[int, ...],
                     against: str) -> None:
    """Each weight broadcasts to ``shape`` (the first argument's), or a ValueError naming it."""
    for name, w in weights.items():
        wshape = tuple(getattr(w, "shape", ()))
        trailing = shape[len(shape) - len(wshape):]  # NumPy's rule, dimension by dimension
        fits = len(wshape) <= len(shape) and all(
            size in (1, target) for size, target in zip(wshape, trailing, strict=True))
        if not fits:
            raise ValueError(f"xpit.{func}: {name!r} has shape {wshape}, which does not "
                             f"broadcast to the shape {shape} of {against!r}")


def _check_broadcast_together(func: str, names: tuple[str, str], a: Array, b: Array) -> None:
    """The shapes of ``a`` and ``b`` broadcast together, or a ValueError naming both."""
    try:
        np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    except ValueError:
        raise ValueError(f"xpit.{func}: {names[0]!r} has shape {tuple(a.shape)} and "
                         f"{names[1]!r} has shape {tuple(b.shape)}, which do not "
                         "broadcast together") from None


def _is_real_number(value: Any) -> bool:
    """A Python or NumPy real scalar (not a bool)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def _binary(func: str, names: tuple[str, str], kernel: Callable[..., Array], first: Array,
            second: Array, backend: str | None, weights: dict[str, Array] | None = None,
            *, broadcast: bool = False, **options: Any) -> Array:
    """Two arguments of one shape (or, with ``broadcast``, of shapes that broadcast); an
    integer or boolean second one takes the first's dtype.

    ``weights`` (the loss's ``weight`` and ``pos_weight``, not None) broadcast against the
    first argument and take the result's dtype."""
    weights = weights or {}
    route, arrays = resolve(func, dict(zip(names, (first, second), strict=True)) | weights,
                            backend)
    a, b = (arrays[n] for n in names)
    if broadcast and tuple(a.shape) != tuple(b.shape):
        _check_broadcast_together(func, names, a, b)
        a, b = route.xp.broadcast_arrays(a, b)
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"xpit.{func}: {names[1]!r} has shape {tuple(b.shape)} but "
                         f"{names[0]!r} has shape {tuple(a.shape)}; they must match")
    xp = route.xp
    out, work = float_dtypes(func, names[0], xp, a.dtype, route.device)
    out_b, work_b = float_dtypes(func, names[1], xp, b.dtype, route.device)
    if not xp.isdtype(b.dtype, ("integral", "bool")):
        out, work = xp.result_type(out, out_b), xp.result_type(work, work_b)
    for name in weights:
        float_dtypes(func, name, xp, arrays[name].dtype, route.device)  # real, or a TypeError
    _check_broadcast(func, {name: arrays[name] for name in weights}, tuple(a.shape), names[0])
    if route.name == "dask.array":
        from xpit import _dask

        reduction = options.get("reduction")
        blockwise = dict(options, reduction="none") if reduction else options
        block_fn = functools.partial(_dask_binary_block, func, blockwise, tuple(weights))
        return _dask.map_binary(block_fn, a, b, out, reduction,
                                [arrays[name] for name in weights])
    pos_weight = arrays.get("pos_weight")
    compiled_name = _COMPILED.get(func, func)
    inputs = [a, b]
    if pos_weight is not None:
        compiled_name, inputs = compiled_name + "_pos", [a, b, pos_weight]
    module = numpy_backend.compiled()[0]
    if route.name == "numpy" and module is not None:
        if all(tuple(v.shape) == tuple(a.shape) for v in inputs):  # chunked and threaded
            y = np.empty(a.shape, out)
            numpy_backend.compute(compiled_name, a, y, others=tuple(inputs[1:]),
                                  workers=usable_cores())
        else:  # a weight broadcast against the logits: the ufunc broadcasts
            y = getattr(module, compiled_name)(*inputs, dtype=out)
    elif takes_fused(route, out):
        y = fused(route, compiled_name, inputs, out)
    else:  # the weights are moved and cast with the two arrays
        def with_weights(xp: Any, a: Array, b: Array, *ws: Array) -> Array:
            return kernel(xp, a, b, **options, **dict(zip(weights, ws, strict=True)))

        return route.finish(run_reference(route, with_weights, [a, b, *map(arrays.get, weights)],
                                          work, out))
    if "weight" in weights:
        w = arrays["weight"]
        y = y * (w if route.backend is None or route.backend.name == "numpy"
                 else route.backend.to_device(w)).astype(out, copy=False)
    if "reduction" in options:
        with np.errstate(all="ignore"):  # an empty mean is 0 / 0 = NaN, without a warning
            y = reference.reduce_loss(route.backend.namespace(y) if route.backend else xp, y,
                                     options["reduction"])
    if route.backend is not None and route.backend.name != "numpy":
        y = route.backend.to_host(y)
    return route.finish(y)


# The compiled kernels whose names differ from the public functions'.
_COMPILED = {"binary_cross_entropy_with_logits": "bce_with_logits"}


@_small_inputs_first
def sigmoid(x: Array, /, *, backend: str | None = None) -> Array:
    """The logistic sigmoid ``1 / (1 + exp(-x))``, also known as ``expit``.

    Parameters
    ----------
    x : array_like
        Any array-API array, NumPy array, sequence or real number.
    backend : {'numpy', 'cupy', 'auto'} or None
        Backend for host data in this call; see :func:`xpit.use_backend`.

    Returns
    -------
    array
        Same library, device and shape as ``x``; float32 stays float32, integers
        become the default float. A Python scalar gives a NumPy float64 scalar.
        Values in [0, 1]: 0 at -inf, 1 at +inf, NaN for NaN.

    Notes
    -----
    No overflow for any input, relative accuracy in both tails (``sigmoid(-700)``
    is 9.86e-305, not 0). Within 1 ULP on NumPy and CuPy (the compiled kernels),
    within 2 ULP in float64 and 3 in float32 on other libraries (the array-API ones).

    Examples
    --------
    >>> import numpy as np, xpit
    >>> xpit.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    >>> xpit.sigmoid(-700.0)
    np.float64(9.85967654375977e-305)
    """
    return elementwise("sigmoid", x, backend)


@_small_inputs_first
def sigmoid_grad(x: Array, /, *, backend: str | None = None) -> Array:
    """The derivative of the sigmoid, ``sigmoid(x) * (1 - sigmoid(x))``, from ``x``.

    Computed as ``exp(-|x|) / (1 + exp(-|x|))**2``, which keeps its relative
    accuracy in the tails, where ``s * (1 - s)`` rounds to 0.

    Parameters
    ----------
    x : array_like
        Input: any array-API array, NumPy array, sequence or real number.
    backend : {'numpy', 'cupy', 'auto'} or None
        Backend for host data in this call; see :func:`xpit.use_backend`.

    Returns
    -------
    array
        Same library, device and shape as ``x``, dtypes as for :func:`sigmoid`: values in
        [0, 1/4], 1/4 at 0, 0 at -inf and inf, NaN for NaN.

    Notes
    -----
    Within 1.5 ULP in float64 and 1 in float32 on NumPy and CuPy, 4 ULP on other libraries.

    Examples
    --------
    >>> import xpit
    >>> xpit.sigmoid_grad(0.0)
    np.float64(0.25)
    >>> xpit.sigmoid_grad(40.0)
    np.float64(4.248354255291589e-18)
    """
    return elementwise("sigmoid_grad", x, backend)


@overload
def sigmoid_backward(s: Real, grad: Real | None = None, /, *,
                     backend: str | None = None) -> np.float64: ...
@overload
def sigmoid_backward(s: FloatT, grad: FloatT | None = None, /, *,
                     backend: str | None = None) -> FloatT: ...
@overload
def sigmoid_backward(s: np.generic | float, grad: np.generic | float | None = None, /, *,
                     backend: str | None = None) -> np.floating[Any]: ...
@overload
def sigmoid_backward(s: NDArray[FloatT], grad: NDArray[FloatT] | None = None, /, *,
                     backend: str | None = None) -> NDArray[FloatT]: ...
@overload
def sigmoid_backward(s: NDArray[Any], grad: HostData | None = None, /, *,
                     backend: str | None = None) -> NDArray[np.floating[Any]]: ...
@overload
def sigmoid_backward(s: ArrayT, grad: ArrayT | None = None, /, *,
                     backend: str | None = None) -> ArrayT: ...
@overload
def sigmoid_backward(s: HostData, grad: HostData | None = None, /, *,
                     backend: str | None = None) -> NDArray[np.floating[Any]]: ...
def sigmoid_backward(s: Array, grad: Array | None = None, /, *,
                     backend: str | None = None) -> Array:
    """The backward pass of the sigmoid from its forward output: ``grad * s * (1 - s)``.

    Parameters
    ----------
    s : array_like
        The output of :func:`sigmoid` in the forward pass.
    grad : array_like, optional
        The gradient flowing back, of the same shape as ``s``; if omitted, the
        result is the local derivative ``s * (1 - s)``.
    backend : str or None
        Backend for host data in this call.

    Returns
    -------
    array
        Same library, device and shape as ``s``, dtypes as for :func:`sigmoid`: 0
        where ``s`` is 0 or 1, NaN where ``s`` or ``grad`` is NaN.

    Notes
    -----
    No ``exp`` is evaluated: this is the cheap form used in training loops. On
    NumPy and CuPy float32 and float16 are computed in float64 and rounded once,
    float64 with three roundings (``1 - s`` is exact for s >= 1/2). Its accuracy
    with respect to ``x`` is bounded by that of ``s``: in the far tails, where
    ``s`` rounds to 1, it is 0; use :func:`sigmoid_grad` when ``x`` itself is at
    hand.

    Examples
    --------
    >>> import numpy as np, xpit
    >>> s = xpit.sigmoid(np.array([-2.0, 0.0, 2.0]))
    >>> xpit.sigmoid_backward(s, np.ones(3))
    array([0.10499359, 0.25      , 0.10499359])
    """
    if _is_torch(s) and backend is None and (ops := _torch_ops()).takes(s) and (
            grad is None or (ops.takes(grad) and grad.dtype == s.dtype
                             and grad.shape == s.shape and grad.device == s.device)):
        return ops.sigmoid_backward_of(s, grad)
    if _is_jax(s) and backend is None and (ops := _jax_ops()).takes(s) and (
            grad is None or ops.pairs_with(s, grad)):
        return ops.sigmoid_backward_of(s, grad)
    if grad is None:
        return elementwise("sigmoid_backward", s, backend)
    return _binary("sigmoid_backward", ("s", "grad"), reference.sigmoid_backward, s, grad,
                   backend)


@_small_inputs_first
def log_sigmoid(x: Array, /, *, backend: str | None = None) -> Array:
    """``log(sigmoid(x))``, also known as ``log_expit``; ``log_sigmoid(-1000) == -1000``.

    Parameters
    ----------
    x : array_like
        Input: any array-API array, NumPy array, sequence or real number.
    backend : {'numpy', 'cupy', 'auto'} or None
        Backend for host data in this call; see :func:`xpit.use_backend`.

    Returns
    -------
    array
        Same library, device and shape as ``x``, dtypes as for :func:`sigmoid`: values <= 0,
        -inf at -inf, 0 at inf, NaN for NaN.

    Notes
    -----
    Computed as ``min(x, 0) - log1p(exp(-|x|))``, so no ``exp`` overflows. Within 1 ULP
    on NumPy and CuPy, 2 (float64) and 3 (float32) on other libraries.

    Examples
    --------
    >>> import numpy as np, xpit
    >>> xpit.log_sigmoid(np.array([-1000.0, 0.0, 50.0]))
    array([-1.00000000e+03, -6.93147181e-01, -1.92874985e-22])
    """
    return elementwise("log_sigmoid", x, backend)


@_small_inputs_first
def softplus(x: Array, /, *, backend: str | None = None) -> Array:
    """``log(1 + exp(x))``, the smooth ReLU; ``softplus(1000) == 1000``, never ``inf``.

    Parameters
    ----------
    x : array_like
        Input: any array-API array, NumPy array, sequence or real number.
    backend : {'numpy', 'cupy', 'auto'} or None
        Backend for host data in this call; see :func:`xpit.use_backend`.

    Returns
    -------
    array
        Same library, device and shape as ``x``, dtypes as for :func:`sigmoid`: values >= 0,
        0 at -inf, inf at inf, NaN for NaN.

    Notes
    -----
    Computed as ``max(x, 0) + log1p(exp(-|x|))``, so no ``exp`` overflows. Within 1 ULP
    on NumPy and CuPy, 2 (float64) and 3 (float32) on other libraries.

    Examples
    --------
    >>> import numpy as np, xpit
    >>> xpit.softplus(np.array([-50.0, 0.0, 1000.0]))
    array([1.92874985e-22, 6.93147181e-01, 1.00000000e+03])
    """
    return elementwise("softplus", x, backend)


@_small_inputs_first
def logit(p: Array, /, *, backend: str | None = None) -> Array:
    """The inverse of the sigmoid, ``log(p / (1 - p))``.

    Accurate near 1/2, where the textbook formula loses dozens of ULP.

    Parameters
    ----------
    p : array_like
        Probabilities: any array-API array, NumPy array, sequence or real number.
    backend : {'numpy', 'cupy', 'auto'} or None
        Backend for host data in this call; see :func:`xpit.use_backend`.

    Returns
    -------
    array
        Same library, device and shape as ``p``, dtypes as for :func:`sigmoid`:
        ``logit(0) = -inf``, ``logit(1) = inf``, NaN outside [0, 1] and for NaN.

    Notes
    -----
    Within 1 ULP on NumPy and CuPy, 2 (float64) and 3 (float32) on other libraries.

    Examples
    --------
    >>> import numpy as np, xpit
    >>> xpit.logit(np.array([0.0, 0.25, 0.5, 1.0]))
    array([      -inf, -1.09861229,  0.        ,        inf])
    """
    return elementwise("logit", p, backend)


@overload
def binary_cross_entropy_with_logits(logits: Real, targets: Real, /, *,
                                     weight: Real | None = None, pos_weight: Real | None = None,
                                     reduction: str = "mean",
                                     backend: str | None = None) -> np.float64: ...
@overload
def binary_cross_entropy_with_logits(logits: np.generic | float, targets: np.generic | float,
                                     /, *, weight: HostData | None = None,
                                     pos_weight: HostData | None = None, reduction: str = "mean",
                                     backend: str | None = None) -> np.floating[Any]: ...
@overload
def binary_cross_entropy_with_logits(logits: NDArray[Any], targets: HostData, /, *,
                                     weight: HostData | None = None,
                                     pos_weight: HostData | None = None,
                                     reduction: Literal["none"],
                                     backend: str | None = None) -> NDArray[np.floating[Any]]: ...
@overload
def binary_cross_entropy_with_logits(logits: NDArray[Any], targets: HostData, /, *,
                                     weight: HostData | None = None,
                                     pos_weight: HostData | None = None,
                                     reduction: Literal["mean", "sum"] = "mean",
                                     backend: str | None = None) -> np.floating[Any]: ...
@overload
def binary_cross_entropy_with_logits(logits: ArrayT, targets: ArrayT | float, /, *,
                                     weight: ArrayT | float | None = None,
                                     pos_weight: ArrayT | float | None = None,
                                     reduction: str = "mean",
                                     backend: str | None = None) -> ArrayT: ...
@overload
def binary_cross_entropy_with_logits(logits: HostData, targets: HostData, /, *,
                                     weight: HostData | None = None,
                                     pos_weight: HostData | None = None,
                                     reduction: Literal["none"],
                                     backend: str | None = None) -> NDArray[np.floating[Any]]: ...
@overload
def binary_cross_entropy_with_logits(logits: HostData, targets: HostData, /, *,
                                     weight: HostData | None = None,
                                     pos_weight: HostData | None = None,
                                     reduction: Literal["mean", "sum"] = "mean",
                                     backend: str | None = None) -> np.floating[Any]: ...
@overload
def binary_cross_entropy_with_logits(logits: HostData, targets: HostData, /, *,
                                     weight: HostData | None = None,
                                     pos_weight: HostData | None = None,
                                     reduction: str = "mean", backend: str | None = None
                                     ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
def binary_cross_entropy_with_logits(logits: Array, targets: Array, /, *,
                                     weight: Array | None = None,
                                     pos_weight: Array | None = None,
                                     reduction: str = "mean",
                                     backend: str | None = None) -> Array:
    """Binary cross-entropy of ``sigmoid(logits)`` against ``targets``, without overflow.

    ``-weight * (pos_weight * t * log_sigmoid(z) + (1 - t) * log_sigmoid(-z))``, stable
    for any logits (``|z|`` up to 1e300 and beyond, and infinite logits whose targets agree
    give 0) and for soft targets in [0, 1], like
    ``torch.nn.functional.binary_cross_entropy_with_logits``, with the same ``weight`` and
    ``pos_weight``.

    Parameters
    ----------
    logits : array_like
        Raw scores ``z``.
    targets : array_like
        Labels or probabilities ``t``, of the same shape as ``logits``. Integer
        or boolean targets take the logits' floating dtype.
    weight : array_like, optional
        A weight for each element's loss, broadcast against ``logits`` (e.g. one per
        sample of shape ``(N, 1)``). Default: 1.
    pos_weight : array_like, optional
        A weight for the positive term, broadcast against ``logits``: one per class
        (shape ``(C,)`` for logits of shape ``(N, C)``), e.g. ``negatives / positives``
        for an imbalanced class. Default: 1.
    reduction : {'mean', 'sum', 'none'}
        Average over every element (NaN when empty), sum, or the elementwise loss.
        The mean divides by the number of elements, not by the sum of the weights,
        as PyTorch's does.
    backend : str or None
        Backend for host data in this call.

    Returns
    -------
    array
        A 0-d array (NumPy: a scalar) for ``'mean'`` and ``'sum'``, else the
        elementwise loss, in the library and on the device of ``logits``.

    Notes
    -----
    Computed as ``|z| c + ((1 - t) + pos_weight t) log1p(exp(-|z|))`` with ``c = 1 - t``
    for z >= 0 and ``c = pos_weight t`` below, then times ``weight``. On NumPy and CuPy
    the elementwise loss is one kernel; ``tests/test_ufuncs.py`` checks float64 within
    1.5 ULP of mpmath for targets at and near 1 and positive-class weights from 1e-12 to
    10. float16 is float64's result rounded once; float32 has kernels of its own (in
    float64 arithmetic without double-double steps, so they vectorise) that give the same
    bits on every input tested, and the gradients below within 1 ULP of them (nearer the
    exact value where their two terms cancel). On PyTorch and JAX
    the gradient with respect to the logits is ``weight ((1 - t) sigmoid(z) - pos_weight t
    sigmoid(-z))`` (``sigmoid(z) - t`` without weights), and the targets and weights are
    differentiable too.

    Examples
    --------
    >>> import numpy as np, xpit
    >>> z, t = np.array([-1e300, 0.0, 3.0]), np.array([0, 1, 1])
    >>> xpit.binary_cross_entropy_with_logits(z, t, reduction="none")
    array([0.        , 0.69314718, 0.04858735])
    >>> xpit.binary_cross_entropy_with_logits(z, t)
    np.float64(0.24724484...)
    >>> xpit.binary_cross_entropy_with_logits(z, t, pos_weight=3.0, reduction="none")
    array([0.        , 2.07944154, 0.14576205])
    """
    func = "binary_cross_entropy_with_logits"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"xpit.{func}: invalid reduction {reduction!r}; expected one of "
                         f"{', '.join(map(repr, _REDUCTIONS))}")
    # A NumPy real scalar weight is a number, as a Python float is, on every backend.
    weights: dict[str, Any] = {
        name: float(value) if isinstance(value, np.generic) and _is_real_number(value) else value
        for name, value in (("weight", weight), ("pos_weight", pos_weight)) if value is not None}
    if _is_torch(logits) and backend is None and (ops := _torch_ops()).takes(logits) and (
            _is_torch(targets) and targets.shape == logits.shape
            and targets.device == logits.device
            and (targets.dtype == logits.dtype or not targets.is_floating_point())
            and all(_is_real_number(w) or (_is_torch(w) and w.device == logits.device
                                           and not w.is_complex())
                    for w in weights.values())):
        _check_broadcast(func, weights, tuple(logits.shape), "logits")
        return ops.bce(logits, targets, reduction, **weights)
    if _is_jax(logits) and backend is None and (ops := _jax_ops()).takes(logits) and (
            ops.pairs_with(logits, targets, labels=True)
            and all(_is_real_number(w) or (_is_jax(w) and ops.takes(w))
                    for w in weights.values())):
        _check_broadcast(func, weights, tuple(logits.shape), "logits")
        return ops.bce(logits, targets, reduction, **weights)
    return _binary(func, ("logits", "targets"), reference.binary_cross_entropy_with_logits,
                   logits, targets, backend, weights, reduction=reduction)


@_small_inputs_first
def log1mexp(x: Array, /, *, backend: str | None = None) -> Array:
    """``log(1 - exp(x))`` for x <= 0: the log of the complement of a probability held as a log.

    Parameters
    ----------
    x : array_like
        Log-probabilities, ``x <= 0``: any array-API array, NumPy array, sequence or
        real number.
    backend : {'numpy', 'cupy', 'auto'} or None
        Backend for host data in this call; see :func:`xpit.use_backend`.

    Returns
    -------
    array
        Same library, device and shape as ``x`` (dtypes as for :func:`sigmoid`):
        values <= 0, -inf at 0, -0.0 at -inf, NaN above 0 and for NaN.

    Notes
    -----
    The textbook ``log(1 - exp(x))`` is -inf for x = -1e-20 (the value is -46.05) and
    0 below -37 (the value is -exp(x)); ``log(-expm1(x))`` near 0 and ``log1p(-exp(x))``
    below -ln 2 keep both ends. Within 1 ULP in float64 on NumPy and CuPy (one kernel
    from the C header), 2 ULP elsewhere (the array-API reference; JAX's float64 ``log1p``
    makes that 130 there); float32 and float16 within 1 ULP. Its derivative,
    ``-exp(x) / (1 - exp(x)) = -1 / expm1(-x)``, is what PyTorch and JAX see.

    Examples
    --------
    >>> import numpy as np, xpit
    >>> xpit.log1mexp(np.array([-1e-20, -np.log(2.0), -50.0]))
    array([-4.60517019e+01, -6.93147181e-01, -1.92874985e-22])
    >>> xpit.log1mexp(0.0)
    np.float64(-inf)
    """
    return elementwise("log1mexp", x, backend)


@_small_inputs_first
def logexpm1(y: Array, /, *, backend: str | None = None) -> Array:
    """``log(exp(y) - 1)`` for y >= 0: the inverse of :func:`softplus`.

    Maps a positive parameter to an unconstrained one: ``softplus(logexpm1(y)) == y``
    (up to rounding) for every y > 0.

    Parameters
    ----------
    y : array_like
        ``y >= 0``: any array-API array, NumPy array, sequence or real number.
    backend : {'numpy', 'cupy', 'auto'} or None
        Backend for host data in this call; see :func:`xpit.use_backend`.

    Returns
    -------
    array
        Same library, device and shape as ``y``: -inf at 0, inf at inf, NaN below 0 and
        for NaN. Never overflows: ``logexpm1(1000) == 1000``.

    Notes
    -----
    The textbook ``log(exp(y) - 1)`` overflows above 709 and loses every digit near its
    zero at ``y = ln 2``; xpit writes ``exp(y) - 2 = 2 expm1(y - ln 2)`` there, with
    ``y - ln 2`` exact. Within 1 ULP in float64 on NumPy and CuPy, 3 ULP elsewhere (JAX
    float64: 110, its ``log1p``); float32 and float16 within 1 ULP. Derivative: ``-1 / expm1(-y)``.

    Examples
    --------
    >>> import numpy as np, xpit
    >>> xpit.logexpm1(np.array([1e-10, 1.0, 1000.0]))
    array([-2.30258509e+01,  5.41324855e-01,  1.00000000e+03])
    >>> float(xpit.softplus(xpit.logexpm1(3.0)))
    3.0
    """
    return elementwise("logexpm1", y, backend)


@_small_inputs_first
def logitexp(x: Array, /, *, backend: str | None = None) -> Array:
    """``logit(exp(x)) = log(exp(x) / (1 - exp(x)))`` for x <= 0: the logit of a log-probability.

    Parameters
    ----------
    x : array_like
        Log-probabilities, ``x <= 0``: any array-API array, NumPy array, sequence or
        real number.
    backend : {'numpy', 'cupy', 'auto'} or None
        Backend for host data in this call; see :func:`xpit.use_backend`.

    Returns
    -------
    array
        Same library, device and shape as ``x`` (dtypes as for :func:`sigmoid`): inf at 0,
        -inf at -inf, NaN above 0 and for NaN.

    Notes
    -----
    Computed as ``-logexpm1(-x)``, so exact through its zero at ``x = -ln 2``, where
    ``x - log1mexp(x)`` cancels. Accuracy as for :func:`logexpm1`. Derivative:
    ``-1 / expm1(x)``.

    Examples
    --------
    >>> import numpy as np, xpit
    >>> xpit.logitexp(np.log(np.array([0.1, 0.25, 0.9])))
    array([-2.19722458, -1.09861229,  2.19722458])
    """
    return elementwise("logitexp", x, backend)


@overload
def logdiffexp(a: Real, b: Real, /, *, backend: str | None = None) -> np.float64: ...
@overload
def logdiffexp(a: FloatT, b: FloatT, /, *, backend: str | None = None) -> FloatT: ...
@overload
def logdiffexp(a: np.generic | float, b: np.generic | float, /, *,
               backend: str | None = None) -> np.floating[Any]: ...
@overload
def logdiffexp(a: NDArray[FloatT], b: NDArray[FloatT], /, *,
               backend: str | None = None) -> NDArray[FloatT]: ...
@overload
def logdiffexp(a: NDArray[Any], b: HostData, /, *,
               backend: str | None = None) -> NDArray[np.floating[Any]]: ...
@overload
def logdiffexp(a: HostData, b: NDArray[Any], /, *,
               backend: str | None = None) -> NDArray[np.floating[Any]]: ...
@overload
def logdiffexp(a: ArrayT, b: ArrayT | float, /, *, backend: str | None = None) -> ArrayT: ...
@overload
def logdiffexp(a: HostData, b: HostData, /, *,
               backend: str | None = None) -> NDArray[np.floating[Any]]: ...
def logdiffexp(a: Array, b: Array, /, *, backend: str | None = None) -> Array:
    """``log(exp(a) - exp(b))`` for a >= b: the difference of two probabilities held as logs.

    The subtracting counterpart of :func:`numpy.logaddexp`, without overflow.

    Parameters
    ----------
    a, b : array_like
        ``b <= a``; they broadcast against each other, as NumPy's arguments do. An
        integer or boolean ``b`` takes ``a``'s floating dtype.
    backend : {'numpy', 'cupy', 'auto'} or None
        Backend for host data in this call; see :func:`xpit.use_backend`.

    Returns
    -------
    array
        The broadcast shape, in the library and on the device of the inputs: -inf where
        ``a == b`` (``-inf == -inf`` included: 0 - 0), ``a`` where ``b`` is -inf, NaN
        where ``a < b``, at ``a == b == inf`` (inf - inf) and for NaN.

    Notes
    -----
    Computed as ``a + log1mexp(b - a)``, with the rounding error of ``b - a`` carried
    along on NumPy and CuPy. Within 1 ULP in float64 there, except near the curve
    ``exp(a) - exp(b) = 1`` where the result crosses zero: there its relative error grows
    with the condition number ``|a e^a - b e^b| / |(e^a - e^b) result|``, as any method's
    must (the result is exact for inputs perturbed by about 2**-56). On PyTorch and JAX
    the partial derivatives are ``-1 / expm1(b - a)`` and ``-1 / expm1(a - b)``.

    Examples
    --------
    >>> import numpy as np, xpit
    >>> xpit.logdiffexp(np.log(0.5), np.log(np.array([0.1, 0.25, 0.5])))
    array([-0.91629073, -1.38629436,        -inf])
    >>> xpit.logdiffexp(1000.0, 999.0)
    np.float64(999.5413248546129)
    """
    names = ("a", "b")
    if _is_torch(a) and backend is None and (ops := _torch_ops()).takes(a) and (
            ops.takes(b) and b.dtype == a.dtype and b.device == a.device):
        _check_broadcast_together("logdiffexp", names, a, b)
        return ops.logdiffexp(a, b)
    if _is_jax(a) and backend is None and (ops := _jax_ops()).takes(a) and (
            ops.takes(b) and b.dtype == a.dtype):
        _check_broadcast_together("logdiffexp", names, a, b)
        return ops.logdiffexp(a, b)
    return _binary("logdiffexp", names, reference.logdiffexp, a, b, backend, broadcast=True)
