"""Which backend computes *host* data: ``XPIT_BACKEND``, :func:`set_backend`, :func:`use_backend`.

This module owns the environment variable and the programmatic switches. The
choice only routes host data (NumPy arrays, Python scalars, sequences); an
array of any other library is always computed by its own library, on its own
device (see :mod:`xpit._dispatch`).

Strongest first: a per-call ``backend=`` argument, the innermost
:func:`use_backend` block, :func:`set_backend`, ``XPIT_BACKEND``, the default
``"numpy"``. The variable is read once, when a backend is first needed, not at
import: setting it in a notebook before the first call works. Reading it on
every call would cost more than computing a sigmoid of a Python float, so a
running process changes its choice with :func:`set_backend` instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from xpit import _registry

ENV_VAR = "XPIT_BACKEND"
AUTO = "auto"
DEFAULT = "numpy"

__all__ = [
    "ENV_VAR",
    "BackendFallbackWarning",
    "BackendUnavailableError",
    "Selection",
    "selection",
    "set_backend",
    "use_backend",
]


class BackendFallbackWarning(RuntimeWarning):
    """A valid backend was selected but is not usable here; xpit computes with NumPy instead.

    Shown once per process, with the reason (CuPy missing, no CUDA device...). Select the
    backend with ``strict=True`` to get a :class:`BackendUnavailableError` instead.

    Examples
    --------
    >>> import xpit
    >>> issubclass(xpit.BackendFallbackWarning, RuntimeWarning)
    True
    """


class BackendUnavailableError(RuntimeError):
    """A backend was selected with ``strict=True`` but is not usable here.

    The message says why, as the probe found it.

    Examples
    --------
    >>> import xpit
    >>> try:
    ...     with xpit.use_backend("cupy", strict=True):
    ...         y = xpit.sigmoid([0.0])                  # on the GPU, if one is usable
    ... except xpit.BackendUnavailableError:
    ...     y = xpit.sigmoid([0.0])                      # else NumPy, by choice
    >>> y
    array([0.5])
    """


@dataclass(frozen=True)
class Selection:
    """A requested backend name, whether falling back is forbidden, and where it came from."""

    name: str
    strict: bool
    source: str


def valid_names() -> tuple[str, ...]:
    """The names a backend may be selected by: every registered backend, then ``'auto'``."""
    return (*_registry.names(), AUTO)


def normalize(value: object, *, what: str) -> str:
    """Return a backend name stripped and lower-cased, or raise a ``ValueError`` naming ``what``."""
    name = value.strip().lower() if isinstance(value, str) else None
    if name not in valid_names():
        expected = ", ".join(repr(n) for n in valid_names())
        raise ValueError(f"Invalid value for {what}: {value!r}. Expected one of {expected}.")
    return name


_context: ContextVar[Selection | None] = ContextVar("xpit_backend", default=None)
_process: Selection | None = None
_DEFAULT = Selection(DEFAULT, strict=False, source="default")
_UNREAD = Selection("", strict=False, source="")
_environment: Selection | None = _UNREAD  # XPIT_BACKEND, parsed at first need
_open_blocks = 0  # use_backend blocks open in any thread or task: host_is_default's shortcut
# Guards _open_blocks and host_default, so that a refresh never overwrites a newer state.
_state_lock = threading.RLock()
# True only while host data surely goes to NumPy by default (the variable read and unset,
# no set_backend, no use_backend block open): the small-input lane reads just this.
host_default = False


def _refresh() -> None:
    global host_default
    with _state_lock:
        host_default = _open_blocks == 0 and _process is None and _environment is None


def _from_environment() -> Selection | None:
    global _environment
    if _environment is _UNREAD:
        raw = os.environ.get(ENV_VAR, "")
        # An invalid value raises here, and again at every call, until it is fixed.
        _environment = (Selection(normalize(raw, what=ENV_VAR), strict=False, source=ENV_VAR)
                        if raw.strip() else None)
        _refresh()
    return _environment


def selection(explicit: str | None = None, func: str = "") -> Selection:
    """The backend that should compute host data now, with where the choice came from.

    ``explicit`` is a per-call ``backend=`` argument of ``xpit.func``; it takes
    its strictness from the innermost :func:`use_backend` or :func:`set_backend`.
    """
    ambient = _context.get() or _process or _from_environment()
    if explicit is not None:
        name = normalize(explicit, what=f"backend= in xpit.{func}")
        return Selection(name, strict=bool(ambient and ambient.strict), source="backend= argument")
    return ambient or _DEFAULT


def host_is_default() -> bool:
    """Whether host data surely goes to NumPy by default: the common case, checked cheaply.

    False while a :func:`use_backend` block is open in any thread or task (a caller
    then resolves the choice with :func:`selection`, which sees only its own blocks).
    """
    if _open_blocks or _process is not None:
        return False
    environment = _environment if _environment is not _UNREAD else _from_environment()
    return environment is None


def set_backend(name: str | None, *, strict: bool = False) -> None:
    """Choose the backend that computes host data for the rest of the process.

    Parameters
    ----------
    name : {'numpy', 'cupy', 'auto'} or a registered name, or None
        ``None`` forgets the choice, so ``XPIT_BACKEND`` or the default applies again.
    strict : bool
        If True, an unusable backend raises :class:`BackendUnavailableError`
        instead of falling back to NumPy with a :class:`BackendFallbackWarning`.

    Examples
    --------
    >>> import xpit
    >>> xpit.set_backend("numpy")
    >>> xpit.get_backend().source
    'set_backend()'
    >>> xpit.set_backend(None)
    """
    global _process
    _process = None if name is None else Selection(
        normalize(name, what="xpit.set_backend()"), strict=bool(strict), source="set_backend()")
    _refresh()


@contextmanager
def use_backend(name: str, *, strict: bool = False) -> Iterator[None]:
    """Choose the backend that computes host data inside a ``with`` block.

    The choice is held in a :class:`contextvars.ContextVar`, so threads and
    asyncio tasks each see their own, and it is restored on exit, also on error.

    Parameters
    ----------
    name : {'numpy', 'cupy', 'auto'} or a registered name
        The backend for host data inside the block.
    strict : bool
        If True, an unusable backend raises :class:`BackendUnavailableError`
        instead of falling back to NumPy with a :class:`BackendFallbackWarning`.

    Yields
    ------
    None
        The block runs with the choice in force.

    Examples
    --------
    >>> import numpy as np, xpit
    >>> with xpit.use_backend("numpy"):
    ...     xpit.get_backend().source
    'use_backend()'
    """
    global _open_blocks
    token = _context.set(Selection(normalize(name, what="xpit.use_backend()"), strict=bool(strict),
                                   source="use_backend()"))
    with _state_lock:
        _open_blocks += 1
        _refresh()
    try:
        yield
    finally:
        _context.reset(token)
        with _state_lock:
            _open_blocks -= 1
            _refresh()
