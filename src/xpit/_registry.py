"""Backend records: how to recognise a library's arrays, whether it is usable here, and how
to move host data to its device and back.

Built in: ``numpy`` (the host) and ``cupy``. Any other array-API library
(PyTorch, JAX, Dask, array-api-strict) needs no record: its arrays are
recognised by :func:`array_api_compat.array_namespace` and computed in place.
A record only matters for a library that host data can be *sent to*.

Recognising an array never imports its library: a type can only belong to a
library that is already in :data:`sys.modules`. Verdicts are cached per type,
probes once per process; :func:`register_backend` clears both.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Backend", "backend_of", "get", "names", "probe", "register_backend"]


@dataclass(frozen=True)
class Backend:
    """What xpit needs to know about an array library that host data can be sent to.

    Parameters
    ----------
    name : str
        Lower-case identifier used by ``backend=``, ``XPIT_BACKEND`` and friends.
    array_types : tuple of str
        Qualified names of the array types, e.g. ``("cupy.ndarray",)``. The
        first dotted part is the module; it is never imported to check a type.
    namespace : callable
        ``namespace(array)`` returns the array-API namespace that computes it.
    probe : callable
        ``probe()`` returns ``(usable, reason)``. Called at most once per
        process; any exception it raises counts as unusable.
    to_device, to_host : callable
        Move a NumPy array to this backend's current device, and back.
    version : callable
        ``version()`` returns the library's version string (may import it).
    devices : callable
        ``devices()`` returns the names of the devices this backend can use.
    accelerator : bool
        Whether ``backend='auto'`` should prefer this backend when it is usable.

    Examples
    --------
    A backend that "sends" host data to NumPy itself, to show the fields:

    >>> import numpy as np, xpit
    >>> host = xpit.Backend(name="host-copy", array_types=(), namespace=lambda a: np,
    ...                     probe=lambda: (True, "always"), to_device=np.asarray,
    ...                     to_host=np.asarray, version=lambda: np.__version__)
    >>> xpit.register_backend(host)
    >>> xpit.sigmoid([0.0, 2.0], backend="host-copy")
    array([0.5       , 0.88079708])
    """

    name: str
    array_types: tuple[str, ...]
    namespace: Callable[[Any], Any]
    probe: Callable[[], tuple[bool, str]]
    to_device: Callable[[Any], Any]
    to_host: Callable[[Any], Any]
    version: Callable[[], str | None]
    devices: Callable[[], list[str]] = field(default=lambda: [])
    accelerator: bool = False

    def owns(self, tp: type) -> bool:
        """Whether ``tp`` is one of this backend's array types, without importing anything.

        Parameters
        ----------
        tp : type
            The type of an argument.

        Returns
        -------
        bool
            True for a subclass of one of ``array_types`` whose module is imported.

        Examples
        --------
        >>> import numpy as np, xpit
        >>> host = xpit.Backend("host-copy", ("numpy.ndarray",), lambda a: np,
        ...                     lambda: (True, "always"), np.asarray, np.asarray,
        ...                     lambda: np.__version__)
        >>> host.owns(np.ndarray), host.owns(list)
        (True, False)
        """
        for qualified in self.array_types:
            module, _, attr = qualified.partition(".")
            obj = sys.modules.get(module)
            for part in attr.split("."):
                obj = getattr(obj, part, None)
            if isinstance(obj, type) and issubclass(tp, obj):
                return True
        return False


_BACKENDS: dict[str, Backend] = {}
_by_type: dict[type, Backend | None] = {}
_probes: dict[str, tuple[bool, str]] = {}
_NAME = re.compile(r"[a-z][a-z0-9_\-]*\Z")


def register_backend(backend: Backend, *, replace: bool = False) -> None:
    """Add (or with ``replace=True`` replace) a backend that host data can be sent to.

    Parameters
    ----------
    backend : Backend
        The record; its name must be a lower-case identifier other than ``'auto'``.
    replace : bool
        Replace a backend already registered under that name (otherwise a
        ``ValueError``). The cached type verdicts and its probe are cleared.

    Examples
    --------
    >>> import numpy as np, xpit
    >>> host = xpit.Backend(name="host-copy", array_types=(), namespace=lambda a: np,
    ...                     probe=lambda: (True, "always"), to_device=np.asarray,
    ...                     to_host=np.asarray, version=lambda: np.__version__)
    >>> xpit.register_backend(host)
    >>> float(xpit.sigmoid(0.0, backend="host-copy"))
    0.5
    """
    if not isinstance(backend, Backend):
        raise TypeError(f"register_backend: expected an xpit.Backend, got {type(backend).__name__}")
    if not _NAME.match(backend.name) or backend.name == "auto":
        raise ValueError(f"register_backend: invalid backend name {backend.name!r}; use a "
                         "lower-case identifier other than 'auto'")
    if backend.name in _BACKENDS and not replace:
        raise ValueError(f"register_backend: a backend named {backend.name!r} is already "
                         "registered; pass replace=True to replace it")
    for attr in ("namespace", "probe", "to_device", "to_host", "version", "devices"):
        if not callable(getattr(backend, attr)):
            raise TypeError(f"register_backend: {attr} of backend {backend.name!r} is not callable")
    if any(not isinstance(t, str) or "." not in t for t in backend.array_types):
        raise ValueError(f"register_backend: array_types of {backend.name!r} must be qualified "
                         f"type names such as 'cupy.ndarray', got {backend.array_types!r}")
    _BACKENDS[backend.name] = backend
    _by_type.clear()
    _probes.pop(backend.name, None)


def names() -> tuple[str, ...]:
    """Registered backend names, in registration order."""
    return tuple(_BACKENDS)


def get(name: str) -> Backend:
    """The backend registered under ``name`` (which must be valid)."""
    return _BACKENDS[name]


def backend_of(tp: type) -> Backend | None:
    """The registered backend whose arrays have type ``tp``, or None; cached per type."""
    try:
        return _by_type[tp]
    except KeyError:
        # A miss is safe to cache: a subclass of a library's array type can only
        # exist once that library is imported, so the verdict cannot go stale.
        found = _by_type[tp] = next((b for b in _BACKENDS.values() if b.owns(tp)), None)
        return found


def probe(name: str) -> tuple[bool, str]:
    """``(usable, reason)`` for a backend, probed once and cached; never raises."""
    try:
        return _probes[name]
    except KeyError:
        try:
            usable, reason = _BACKENDS[name].probe()
            verdict = (bool(usable), str(reason))
        except Exception as exc:  # a probe that crashes means unusable, with its reason
            verdict = (False, f"probe failed: {exc!r}")
        _probes[name] = verdict
        return verdict
