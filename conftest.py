"""State reset shared by the tests and the doctests in ``src/``.

Backend selection, the registry and the "fallback warned once" flag are process
state on purpose; resetting them between tests is a test-only knob, so it lives
here and not in the library.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

# scikit-learn's array-API checks need SciPy in array-API mode, chosen before SciPy
# is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import importlib.util

import pytest

import xpit
from xpit import _config, _dispatch, _registry

# Keras reads its backend once, at import: the tests run it on JAX (xpit's custom_jvp
# functions); tests/test_keras.py runs the PyTorch backend in a subprocess.
os.environ.setdefault("KERAS_BACKEND", "jax")

# Modules whose imports need what may be missing: the compiled extension, PyTorch, Keras.
collect_ignore = [path for path, needs in (("src/xpit/ufuncs.py", ["xpit.kernels._ufuncs"]),
                                           ("src/xpit/torch.py", ["torch"]),
                                           ("src/xpit/keras.py", ["keras", "jax"]))
                  if not all(importlib.util.find_spec(name) for name in needs)]


@pytest.fixture(autouse=True)
def clean_backend_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from the defaults: no XPIT_BACKEND, no set_backend, built-in backends
    only, and the fallback warning not yet shown."""
    monkeypatch.delenv(_config.ENV_VAR, raising=False)
    monkeypatch.setattr(_config, "_environment", _config._UNREAD)  # read XPIT_BACKEND anew
    monkeypatch.setattr(_config, "host_default", False)  # known again once it is read
    monkeypatch.setattr(_dispatch, "_fallback_warned", False)
    monkeypatch.setattr(_registry, "_BACKENDS", dict(_registry._BACKENDS))
    xpit.set_backend(None)
    yield
    xpit.set_backend(None)
    _registry._by_type.clear()


@pytest.fixture
def backend_env(monkeypatch: pytest.MonkeyPatch):
    """Set XPIT_BACKEND as a fresh process would see it (it is read once, at first need)."""
    def set_variable(value: str) -> None:
        monkeypatch.setenv(_config.ENV_VAR, value)
        monkeypatch.setattr(_config, "_environment", _config._UNREAD)
        monkeypatch.setattr(_config, "host_default", False)

    return set_variable
