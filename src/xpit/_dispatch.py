"""Resolve, once per public call, which namespace computes the arguments and on which device.

The dispatch rule: an array is computed by its own library, on its own device,
and comes back as the same kind of array; a device array is never copied to the
host. Only *host* data (NumPy arrays, NumPy and Python scalars, sequences)
follows the selected backend (:mod:`xpit._config`): computed by NumPy, or sent
to the GPU and brought back as NumPy.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from types import FrameType, ModuleType
from typing import Any

import numpy as np

from xpit import _config, _registry
from xpit._config import BackendFallbackWarning, BackendUnavailableError

_PY_SCALARS = (bool, int, float, complex)  # complex: for its dtype error


@dataclass(frozen=True)
class BackendInfo:
    """The backend that computes host data now, and why.

    A frozen record: :func:`get_backend` makes it, and its fields are read as attributes.

    Parameters
    ----------
    name : str
        The backend that will compute host data (after any fallback).
    requested : str
        The name that was asked for (``'auto'`` included).
    source : str
        Where the request came from: ``'backend= argument'``, ``'use_backend()'``,
        ``'set_backend()'``, ``'XPIT_BACKEND'`` or ``'default'``.
    strict : bool
        Whether an unusable request raises instead of falling back.
    reason : str
        The probe's verdict on ``requested``: why it is usable, or why not.

    Examples
    --------
    >>> import xpit
    >>> with xpit.use_backend("numpy", strict=True):
    ...     info = xpit.get_backend()
    >>> info.name, info.source, info.strict, info.fell_back
    ('numpy', 'use_backend()', True, False)
    >>> info.reason
    'NumPy ... on the CPU'
    """

    name: str
    requested: str
    source: str
    strict: bool
    reason: str

    @property
    def fell_back(self) -> bool:
        """True when the requested backend is not usable and NumPy computes instead.

        Examples
        --------
        >>> import xpit
        >>> xpit.get_backend().fell_back
        False
        """
        return self.requested not in (self.name, _config.AUTO)


@dataclass(frozen=True)
class Route:
    """How one call is computed.

    ``xp`` and ``device`` describe the arguments as given: for host data they
    are NumPy and ``"cpu"``, and ``backend`` is the backend that computes it
    (NumPy itself, or one that host data is moved to and back from).
    """

    xp: Any
    device: Any
    name: str
    backend: _registry.Backend | None = None
    scalar: bool = False

    def finish(self, y: Any) -> Any:
        """Hand a result back as the kind of value the caller gave (a scalar for scalars)."""
        return np.asarray(y)[()] if self.scalar else y


_fallback_warned = False


def _resolve_host(sel: _config.Selection) -> BackendInfo:
    """Pick the backend for host data from a selection, applying ``auto`` and the fallback."""
    if sel.name == _config.AUTO:
        for name in _registry.names():
            usable, reason = _registry.probe(name)
            if usable and _registry.get(name).accelerator:
                return BackendInfo(name, sel.name, sel.source, sel.strict, reason)
        return BackendInfo("numpy", sel.name, sel.source, sel.strict,
                           "no accelerator backend is usable")
    usable, reason = _registry.probe(sel.name)
    return BackendInfo(sel.name if usable else "numpy", sel.name, sel.source, sel.strict, reason)


def get_backend() -> BackendInfo:
    """The backend that computes host data now (after ``auto`` and any fallback), and why.

    Raises ``ValueError`` if ``XPIT_BACKEND`` holds an invalid name. Never warns.

    Returns
    -------
    BackendInfo
        The backend's name, the name requested, where the request came from, whether it
        is strict, and the probe's reason.

    Examples
    --------
    >>> import xpit
    >>> info = xpit.get_backend()
    >>> info.name, info.source
    ('numpy', 'default')
    >>> with xpit.use_backend("auto"):
    ...     xpit.get_backend().requested
    'auto'
    """
    return _resolve_host(_config.selection())


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _outside_xpit() -> int:
    """The ``stacklevel`` that points a warning from our caller at the user's line."""
    frame: FrameType | None = sys._getframe(1)  # the function that calls warnings.warn
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def _host_backend(func: str, backend: str | None) -> _registry.Backend:
    global _fallback_warned
    info = _resolve_host(_config.selection(backend, func))
    if info.fell_back:
        message = (f"backend {info.requested!r} (selected by {info.source}) is not usable: "
                   f"{info.reason}")
        if info.strict:
            raise BackendUnavailableError(f"xpit.{func}: {message}")
        if not _fallback_warned:
            _fallback_warned = True
            warnings.warn(f"xpit: {message}. Computing with NumPy on the CPU instead "
                          "(this warning is shown once per process).",
                          BackendFallbackWarning, stacklevel=_outside_xpit())
    return _registry.get(info.name)


def _namespace_name(xp: ModuleType) -> str:
    return xp.__name__.removeprefix("array_api_compat.")


def _describe(owner: tuple[str, Any, Any, str]) -> str:
    name, _, device, arg = owner
    return f"argument {arg!r} (a {name} array on device {device})"


def _compat() -> Any:
    """array-api-compat, imported on first need: the NumPy path does without it."""
    import array_api_compat

    return array_api_compat


_NUMPY_ROUTES: dict[bool, Route] = {}


def resolve(func: str, args: dict[str, Any], backend: str | None) -> tuple[Route, dict[str, Any]]:
    """Validate the arguments of ``xpit.func`` and decide who computes them, once.

    Returns the route and the arguments as arrays: host data as NumPy arrays
    (not yet moved to the backend that computes them), any other array as
    given, Python scalars joining it in its namespace on its device. Raises
    ``TypeError`` for what is not an array or a real number and ``ValueError``
    for arguments of different libraries or devices, or a ``backend=`` that
    contradicts an array's own library.
    """
    if backend is None and len(args) == 1:  # the common case, cheaply: one NumPy array
        value = next(iter(args.values()))
        if type(value) is np.ndarray and _config.host_is_default():
            scalar = value.ndim == 0
            if scalar not in _NUMPY_ROUTES:
                _NUMPY_ROUTES[scalar] = Route(np, "cpu", "numpy", _registry.get("numpy"),
                                              scalar=scalar)
            return _NUMPY_ROUTES[scalar], args
    owner = None  # (library name, namespace, device, argument) of the first non-host array
    host, scalars, arrays = {}, {}, {}
    for arg, value in args.items():
        if value is None or isinstance(value, (str, bytes)):
            raise TypeError(f"xpit.{func}: argument {arg!r} must be an array or a real number, "
                            f"got {type(value).__name__}")
        rec = _registry.backend_of(type(value))
        if isinstance(value, _PY_SCALARS):
            scalars[arg] = value
            continue
        if (rec is not None and rec.name == "numpy") or isinstance(value, (list, tuple)):
            host[arg] = value
            continue
        if rec is not None:
            xp = rec.namespace(value)
            lib = rec.name
        else:
            try:
                xp = _compat().array_namespace(value)
            except TypeError:
                raise TypeError(f"xpit.{func}: argument {arg!r} must be an array or a real "
                                f"number, got {type(value).__name__}") from None
            lib = _namespace_name(xp)
        here = (lib, xp, _compat().device(value), arg)
        if owner is None:
            owner = here
        elif here[1] is not owner[1]:
            raise ValueError(f"xpit.{func}: {_describe(owner)} and {_describe(here)} come from "
                             "different libraries; convert one of them first")
        elif owner[2] != here[2] and None not in (owner[2], here[2]):  # a JAX tracer: none
            raise ValueError(f"xpit.{func}: {_describe(owner)} and {_describe(here)} are on "
                             "different devices; move one of them first")
        arrays[arg] = value

    if owner is not None:
        lib, xp, device, arg = owner
        if host:
            other = next(iter(host))
            raise ValueError(f"xpit.{func}: {_describe(owner)} and argument {other!r} (host "
                             f"data: {type(host[other]).__name__}) come from different "
                             "libraries; convert one of them first")
        requested = None if backend is None else _config.normalize(
            backend, what=f"backend= in xpit.{func}")
        if requested not in (None, lib, _config.AUTO):
            raise ValueError(f"xpit.{func}: backend={backend!r} conflicts with {_describe(owner)}"
                             f"; xpit computes an array with its own library on its own device "
                             "and never moves it. Drop backend= or convert the input first")
        for arg, value in scalars.items():
            arrays[arg] = xp.asarray(value, device=device)
        return Route(xp, device, lib), arrays

    rec = _host_backend(func, backend)
    host.update(scalars)
    for arg, value in host.items():
        try:
            arrays[arg] = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"xpit.{func}: argument {arg!r} cannot be read as an array of real "
                            f"numbers: {exc}") from None
    scalar = all(isinstance(v, (*_PY_SCALARS, np.generic)) or np.ndim(v) == 0
                 for v in host.values())
    return Route(np, "cpu", rec.name, backend=rec, scalar=scalar), arrays
