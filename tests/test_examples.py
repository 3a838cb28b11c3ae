"""The examples in ``examples/`` run on NumPy and on array-api-strict's extra device."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["numpy", "strict-device1"])
def namespace(request):
    if request.param == "numpy":
        return np, None
    strict = pytest.importorskip("array_api_strict")
    return strict, strict.Device("device1")


def test_logistic_regression_matches_scikit_learn(namespace):
    pytest.importorskip("sklearn")
    xp, device = namespace
    result = _load("logistic_regression").compare(xp, device)
    assert abs(result["xpit"] - result["scikit-learn"]) <= 0.01, result


def test_logistic_regression_has_no_overflow_warning_with_a_huge_learning_rate(namespace):
    pytest.importorskip("sklearn")
    xp, device = namespace
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # warnings are errors too
        result = _load("logistic_regression").compare(xp, device, learning_rate=1000.0)
    assert np.isfinite(result["loss"])


def test_lstm_cell_matches_torch(namespace):
    xp, device = namespace
    example = _load("lstm_cell")
    step = example.random_step(xp, device)
    h, c = example.lstm_cell(**step["xp"])
    assert h.device == step["xp"]["x"].device
    pytest.importorskip("torch")
    h_torch, c_torch = example.torch_step(step["host"])
    to_numpy = np.asarray if xp is np else (
        lambda a: np.from_dlpack(a.to_device(xp.Device("CPU_DEVICE"))))
    np.testing.assert_allclose(to_numpy(h), h_torch, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(to_numpy(c), c_torch, rtol=1e-12, atol=1e-14)


def test_vanishing_gradient_shrinks_layer_by_layer(namespace):
    xp, device = namespace
    norms = _load("vanishing_gradient").table(xp, device, depth=12, width=32)
    xavier = np.asarray(norms["xavier"])
    # sigma' <= 1/4: each layer towards the input divides the gradient by at least ~2
    assert np.all(xavier[:-1] < xavier[1:] / 2)
    assert np.asarray(norms["normal"]).min() > xavier.min()


@pytest.mark.parametrize("script", ["logistic_regression", "lstm_cell", "vanishing_gradient"])
def test_scripts_run(script, tmp_path):
    if script == "logistic_regression":
        pytest.importorskip("sklearn")
    args = ["--plot", str(tmp_path / "vg.png")] if script == "vanishing_gradient" else []
    if args:
        pytest.importorskip("matplotlib")
    result = subprocess.run([sys.executable, "-W", "error", str(EXAMPLES / f"{script}.py"),
                             *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
