"""Batch and out-of-core work: chunked, in place, threaded, from and to ``.npy`` files.

>>> import numpy as np, xpit
>>> X = np.linspace(-5, 5, 1_000_000).reshape(1000, 1000)
>>> Y = xpit.batch_sigmoid(X)                      # bit for bit xpit.sigmoid(X)
>>> bool(np.array_equal(Y, xpit.sigmoid(X)))
True
>>> _ = xpit.batch.apply("log_sigmoid", X, out=X)  # in place, no allocation
>>> float(X[0, 0])
-5.006715348489118

Every result equals the one-shot call on the same backend bit for bit, for
every chunk size: both take the same code path, and every function here is
elementwise.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from xpit._atomic_file import output_file
from xpit._chunks import (
    FILE_CHUNK_BYTES,
    check_positive_int,
    chunk_length,
    chunk_slices,
)
from xpit._family import ELEMENTWISE, elementwise

if TYPE_CHECKING:
    from pathlib import Path

    from numpy.typing import NDArray

    from xpit._typing import ArrayT, FloatT, HostData, Real

__all__ = ["FUNCTIONS", "apply", "apply_file", "batch_sigmoid"]

#: The names of the functions that :func:`apply` and :func:`apply_file` take.
FUNCTIONS = tuple(ELEMENTWISE)
# Without progress=, a bar is shown for in-memory work this large, on a terminal.
_LONG_WORK_ELEMENTS = 1 << 26


def function_name(where: str, func: str | Callable[..., Any]) -> str:
    """The name of a batchable family function given by name or as the function itself."""
    name = func if isinstance(func, str) else getattr(func, "__name__", None)
    if name in ELEMENTWISE and (isinstance(func, str) or getattr(func, "__module__", "")
                                .startswith("xpit")):
        return name
    if name == "binary_cross_entropy_with_logits":
        raise ValueError(f"{where}: binary_cross_entropy_with_logits takes two arrays and "
                         "reduces them; it cannot be applied to one array in chunks")
    raise ValueError(f"{where}: unknown function {func!r}; expected one of "
                     f"{', '.join(map(repr, FUNCTIONS))}")


@contextmanager
def _progress(where: str, progress: bool | None, total: int, *, default: bool, unit: str,
              scale: int = 1, desc: str = "") -> Iterator[Callable[[int], object] | None]:
    """A tqdm bar's ``advance(n_elements)``, or None when no bar is wanted."""
    if progress is None:
        progress = default and sys.stderr is not None and sys.stderr.isatty()
    if not progress:
        yield None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError(f"{where}: progress=True needs tqdm; install it with "
                          "pip install 'xpit[progress]'") from None
    with tqdm(total=total * scale, unit=unit, unit_scale=True, unit_divisor=1024 if unit == "B"
              else 1000, desc=desc, dynamic_ncols=True, leave=False) as bar:
        yield lambda n: bar.update(n * scale)


def _options(where: str, chunk_size: object, workers: object) -> tuple[int | None, int | None]:
    return (None if chunk_size is None else check_positive_int(where, "chunk_size", chunk_size),
            None if workers is None else check_positive_int(where, "workers", workers))


# What comes back: ``out`` when given, else as for xpit.sigmoid (see xpit._typing).
@overload
def apply(func: str | Callable[..., Any], x: object, *, chunk_size: int | None = None,
          out: ArrayT, backend: str | None = None, progress: bool | None = None,
          workers: int | None = None) -> ArrayT: ...
@overload
def apply(func: str | Callable[..., Any], x: Real, *, chunk_size: int | None = None,
          out: None = None, backend: str | None = None, progress: bool | None = None,
          workers: int | None = None) -> np.float64: ...
@overload
def apply(func: str | Callable[..., Any], x: FloatT, *, chunk_size: int | None = None,
          out: None = None, backend: str | None = None, progress: bool | None = None,
          workers: int | None = None) -> FloatT: ...
@overload
def apply(func: str | Callable[..., Any], x: NDArray[FloatT], *, chunk_size: int | None = None,
          out: None = None, backend: str | None = None, progress: bool | None = None,
          workers: int | None = None) -> NDArray[FloatT]: ...
@overload
def apply(func: str | Callable[..., Any], x: NDArray[np.integer[Any] | np.bool], *,
          chunk_size: int | None = None, out: None = None, backend: str | None = None,
          progress: bool | None = None, workers: int | None = None) -> NDArray[np.float64]: ...
@overload
def apply(func: str | Callable[..., Any], x: ArrayT, *, chunk_size: int | None = None,
          out: None = None, backend: str | None = None, progress: bool | None = None,
          workers: int | None = None) -> ArrayT: ...
@overload
def apply(func: str | Callable[..., Any], x: HostData, *, chunk_size: int | None = None,
          out: None = None, backend: str | None = None, progress: bool | None = None,
          workers: int | None = None) -> NDArray[np.floating[Any]]: ...
def apply(func: str | Callable[..., Any], x: Any, *, chunk_size: int | None = None,
          out: Any = None, backend: str | None = None, progress: bool | None = None,
          workers: int | None = None) -> Any:
    """Apply a family function to ``x`` chunk by chunk, with bounded memory.

    Parameters
    ----------
    func : str or function
        ``"sigmoid"``, ``"sigmoid_grad"``, ``"log_sigmoid"``, ``"softplus"``,
        ``"logit"`` or ``"sigmoid_backward"``, or the function itself.
    x : array_like
        Input, as for :func:`xpit.sigmoid`.
    chunk_size : int, optional
        Elements per chunk (along the flattened array, or whole rows of the
        leading axis when the input and ``out`` are laid out differently).
        Default: sized to the CPU cache for NumPy, to a few MiB per transfer
        for a GPU.
    out : array, optional
        Where to write the result: the input itself (in place) or an array of
        the same library, device and shape, in the result's dtype. Returned.
    backend : str, optional
        Backend for host data, as for :func:`xpit.sigmoid`. With ``"cupy"``,
        host data is streamed through the GPU in chunks, so it may be larger
        than the GPU's memory.
    progress : bool, optional
        Show a tqdm bar. Default: only for large inputs on a terminal.
    workers : int, optional
        Threads for NumPy data (its ufuncs release the GIL). Default: the
        usable cores.

    Returns
    -------
    array
        ``out`` if given, else a new array, equal bit for bit to the one-shot call.

    Examples
    --------
    >>> import numpy as np, xpit
    >>> x = np.linspace(-3.0, 3.0, 7)
    >>> xpit.batch.apply("softplus", x, chunk_size=2)
    array([0.04858735, 0.12692801, 0.31326169, 0.69314718, 1.31326169,
           2.12692801, 3.04858735])
    >>> y = xpit.batch.apply(xpit.sigmoid, x, out=x)   # in place
    >>> y is x
    True
    """
    where = "xpit.batch.apply"
    name = function_name(where, func)
    chunk_size, workers = _options(where, chunk_size, workers)
    total = math.prod(np.shape(x)) if isinstance(x, (list, tuple)) else math.prod(
        getattr(x, "shape", ()) or (1,))
    with _progress(where, progress, total, default=total >= _LONG_WORK_ELEMENTS,
                   unit="el", desc=name) as advance:
        return elementwise(name, x, backend, out=out, chunk_size=chunk_size, workers=workers,
                           advance=advance, caller="batch.apply")


@overload
def batch_sigmoid(x: Real, **options: Any) -> np.float64: ...
@overload
def batch_sigmoid(x: FloatT, **options: Any) -> FloatT: ...
@overload
def batch_sigmoid(x: NDArray[FloatT], **options: Any) -> NDArray[FloatT]: ...
@overload
def batch_sigmoid(x: NDArray[np.integer[Any] | np.bool], **options: Any) -> NDArray[np.float64]: ...
@overload
def batch_sigmoid(x: ArrayT, **options: Any) -> ArrayT: ...
@overload
def batch_sigmoid(x: HostData, **options: Any) -> NDArray[np.floating[Any]]: ...
def batch_sigmoid(x: Any, **options: Any) -> Any:
    """:func:`~xpit.batch.apply` with ``"sigmoid"``: :func:`xpit.sigmoid`'s bits, in bounded memory.

    Parameters
    ----------
    x : array_like
        Input, as for :func:`xpit.sigmoid`.
    **options
        ``chunk_size``, ``out``, ``backend``, ``progress`` and ``workers``, as for
        :func:`xpit.batch.apply`.

    Returns
    -------
    array
        ``out`` if given, else a new array.

    Examples
    --------
    >>> import numpy as np, xpit
    >>> x = np.array([-1.0, 0.0, 1.0], dtype=np.float32)
    >>> xpit.batch_sigmoid(x, out=x)
    array([0.26894143, 0.5       , 0.7310586 ], dtype=float32)
    """
    return apply("sigmoid", x, **options)


# --- .npy files --------------------------------------------------------------------------------

def _read_header(where: str, path: Path, f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
    except ValueError:
        raise ValueError(f"{where}: {str(path)!r} is not a .npy file") from None
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f"{where}: {str(path)!r} is a .npy file of version {version}, which "
                         "is not supported (1.0 and 2.0 are)")
    try:
        shape, fortran_order, dtype = readers[version](f)
    except ValueError as exc:
        raise ValueError(f"{where}: {str(path)!r} has a damaged .npy header: {exc}") from None
    if dtype.kind not in "fiub" or dtype.fields is not None or dtype.subdtype is not None or (
            dtype.kind == "f" and dtype.itemsize > 8):
        raise TypeError(f"{where}: {str(path)!r} holds {dtype} data; expected float16, float32, "
                        "float64, integers or booleans")
    return shape, fortran_order, dtype


def _write_header(w: Any, shape: tuple[int, ...], fortran_order: bool, dtype: np.dtype) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran_order,
              "shape": shape}
    try:
        np.lib.format.write_array_header_1_0(w, header)  # readable by every NumPy
    except ValueError:  # a header of over 64 KiB (a shape with very many axes)
        np.lib.format.write_array_header_2_0(w, header)


def apply_file(func: str | Callable[..., Any], src: str | os.PathLike[str],
               dst: str | os.PathLike[str], *, chunk_size: int | None = None,
               backend: str | None = None, progress: bool | None = None, overwrite: bool = False,
               workers: int | None = None) -> Path:
    """Apply a family function to a ``.npy`` file, writing a ``.npy`` file, in bounded memory.

    The source is read in chunks into reused buffers, never mapped whole, so a
    file larger than RAM works. Float dtypes are kept (as native byte order);
    integers and booleans become float64; shape and C/Fortran order are kept.
    The result appears at ``dst`` only when complete: on any error, interrupt
    or kill, ``dst`` is untouched. On Linux it is written into a nameless file
    in the folder of ``dst`` (``O_TMPFILE``), so even a killed process leaves
    nothing behind; elsewhere into ``.<name>.xpit-<host>-<pid>-<token>.tmp``
    beside it, removed on errors and interrupts, and, when a killed process
    left one, by the next run for the same destination (POSIX systems; on
    Windows such a leftover is removed by hand).

    Parameters
    ----------
    func : str or function
        As for :func:`apply`.
    src, dst : path
        The input ``.npy`` file and the output path (may be the same file).
    chunk_size : int, optional
        Elements read at a time. Default: 16 MiB of data.
    backend : str, optional
        Backend that computes the data, as for :func:`apply`.
    progress : bool, optional
        Show a tqdm bar in bytes. Default: when stderr is a terminal.
    overwrite : bool
        Replace an existing ``dst``; otherwise that is a ``FileExistsError``.
    workers : int, optional
        Threads for the NumPy computation.

    Returns
    -------
    pathlib.Path
        ``dst``.

    Raises
    ------
    FileNotFoundError
        ``src`` or the folder of ``dst`` does not exist.
    FileExistsError
        ``dst`` exists and ``overwrite`` is False.
    ValueError
        ``src`` is not a ``.npy`` file, or is shorter than its header says.
    TypeError
        ``src`` holds complex, structured, object, string or date data.
    OSError
        The disk is full, a quota or the file size limit is reached, or the
        folder of ``dst`` is not writable; the message says which (``errno``
        is kept) and that ``dst`` was not written.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np, xpit
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(folder / "x.npy", np.arange(-2, 3))           # integers become float64
    >>> xpit.batch.apply_file("sigmoid", folder / "x.npy", folder / "y.npy").name
    'y.npy'
    >>> np.load(folder / "y.npy")
    array([0.11920292, 0.26894142, 0.5       , 0.73105858, 0.88079708])
    """
    from pathlib import Path  # not at import: it costs 6 ms

    where = "xpit.batch.apply_file"
    name = function_name(where, func)
    chunk_size, workers = _options(where, chunk_size, workers)
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise FileNotFoundError(f"{where}: source file {str(src)!r} does not exist")
    if src.is_dir():
        raise IsADirectoryError(f"{where}: source {str(src)!r} is a folder, not a .npy file")
    if dst.is_dir():
        raise IsADirectoryError(f"{where}: destination {str(dst)!r} is a folder")
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{where}: {str(dst)!r} already exists; pass overwrite=True "
                              "(xpit apply --force) to replace it")
    if not dst.parent.is_dir():
        raise FileNotFoundError(f"{where}: the folder of {str(dst)!r} does not exist")

    with open(src, "rb") as f:
        shape, fortran_order, dtype = _read_header(where, src, f)
        count = math.prod(shape)
        missing = f.tell() + count * dtype.itemsize - src.stat().st_size
        if missing > 0:
            raise ValueError(f"{where}: {str(src)!r} is truncated: {missing} bytes of data "
                             "are missing")
        out_dtype = np.dtype(np.float64) if dtype.kind in "iub" else dtype.newbyteorder("=")
        length = chunk_length(max(dtype.itemsize, out_dtype.itemsize), chunk_size,
                              target_bytes=FILE_CHUNK_BYTES)
        with output_file(where, dst, overwrite) as w:
            _write_header(w, shape, fortran_order, out_dtype)
            buf_in = np.empty(min(length, count), dtype)
            buf_out = np.empty(min(length, count), out_dtype)
            with _progress(where, progress, count, default=True, unit="B",
                           scale=dtype.itemsize, desc=src.name) as advance:
                for sl in chunk_slices(count, length):
                    k = sl.stop - sl.start
                    chunk_in, chunk_out = buf_in[:k], buf_out[:k]
                    if f.readinto(chunk_in.view(np.uint8).data) != k * dtype.itemsize:
                        raise ValueError(f"{where}: {str(src)!r} ended early")
                    elementwise(name, chunk_in, backend, out=chunk_out, workers=workers,
                                caller="batch.apply_file")
                    w.write(chunk_out.view(np.uint8).data)
                    if advance is not None:
                        advance(k)
    return dst
