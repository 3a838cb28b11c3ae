"""Chunk planning, as pure functions: how many elements a chunk holds, and which slices.

The executors (NumPy's thread pool, the GPU offload, the file reader) only
consume the slices planned here.
"""

from __future__ import annotations

import functools
import operator
import os
from collections.abc import Iterator

# A chunk of the CPU executor is one call of a compiled ufunc: 1 MiB of work (about
# 0.1-0.3 ms) keeps the hand-over of a chunk to a pool thread (tens of microseconds)
# small, and leaves enough chunks to balance two threads that run at different speeds.
CPU_CHUNK_BYTES = 1 << 20
# Below this an array is computed on the calling thread: handing a chunk to a pool
# thread costs tens of microseconds, about what 512 KiB of float32 sigmoid takes.
# From here up to a chunk per thread, the array is cut into one equal chunk per
# thread (measured, 10**5 float64 on 2 cores: 2.9 ns/el in one chunk, 2.4-2.6 split).
CPU_SPLIT_BYTES = 1 << 19
# A host-to-GPU transfer needs a few MiB to reach full PCIe bandwidth.
GPU_CHUNK_BYTES = 1 << 25
# What a file is read in: big enough to stream at disk speed, small enough
# that the buffers stay far below the 256 MB a 1 GiB file may use.
FILE_CHUNK_BYTES = 1 << 24


def check_positive_int(func: str, name: str, value: object) -> int:
    """``value`` as an int >= 1, or a ``ValueError``/``TypeError`` naming ``func`` and ``name``."""
    try:
        number = operator.index(value)  # type: ignore[arg-type]  # value is any object: what has no __index__ raises the TypeError caught here
    except TypeError:
        raise TypeError(f"{func}: {name} must be an integer, got {type(value).__name__}") from None
    if number < 1:
        raise ValueError(f"{func}: {name} must be at least 1, got {number}")
    return number


def chunk_length(itemsize: int, chunk_size: int | None, *, target_bytes: int) -> int:
    """Elements per chunk: ``chunk_size`` if given, else ``target_bytes`` worth of items."""
    if chunk_size is not None:
        return chunk_size
    return max(1, target_bytes // max(1, itemsize))


def cpu_chunk_length(n: int, itemsize: int, chunk_size: int | None, workers: int) -> int:
    """Elements per chunk of the CPU executor for ``n`` items on ``workers`` threads.

    ``chunk_size`` if given; else all of it below ``CPU_SPLIT_BYTES`` (or on one thread),
    one equal chunk per thread up to ``CPU_CHUNK_BYTES`` per thread, and
    ``CPU_CHUNK_BYTES`` chunks beyond.

    >>> cpu_chunk_length(100_000, 8, None, 2), cpu_chunk_length(100_000, 4, None, 2)
    (50000, 100000)
    >>> cpu_chunk_length(10**7, 4, None, 2), cpu_chunk_length(10**7, 4, 1000, 2)
    (262144, 1000)
    """
    length = chunk_length(itemsize, chunk_size, target_bytes=CPU_CHUNK_BYTES)
    if chunk_size is not None or workers <= 1 or n > length * workers:
        return length
    if n * itemsize < CPU_SPLIT_BYTES:
        return max(1, n)
    return -(-n // workers)


def chunk_slices(n: int, length: int) -> list[slice]:
    """Consecutive slices of at most ``length`` elements covering ``range(n)``.

    >>> chunk_slices(10, 4)
    [slice(0, 4, None), slice(4, 8, None), slice(8, 10, None)]
    >>> chunk_slices(0, 4)
    []
    """
    return [slice(start, min(start + length, n)) for start in range(0, n, length)]


@functools.cache
def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, where the OS has one), read once."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def pipeline_schedule(n_chunks: int, n_streams: int = 2) -> Iterator[tuple[str, int, int]]:
    """The order of steps that overlaps transfers with compute on ``n_streams`` CUDA streams.

    Yields ``(step, chunk, stream)`` with step one of ``"stage"`` (copy the
    chunk into the stream's pinned input buffer, then start its upload,
    kernel and download on the stream) and ``"drain"`` (wait for the stream,
    then copy its pinned output buffer to the destination). A stream's buffers
    are drained before they are staged again, and while the host stages chunk
    ``i``, chunk ``i - 1`` is still moving or computing on the other stream.

    >>> for step in pipeline_schedule(3):
    ...     print(*step)
    stage 0 0
    stage 1 1
    drain 0 0
    stage 2 0
    drain 1 1
    drain 2 0
    """
    for i in range(n_chunks):
        if i >= n_streams:
            yield ("drain", i - n_streams, (i - n_streams) % n_streams)
        yield ("stage", i, i % n_streams)
    for i in range(max(0, n_chunks - n_streams), n_chunks):
        yield ("drain", i, i % n_streams)
