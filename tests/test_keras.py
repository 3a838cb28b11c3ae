"""``xpit.keras``: the Keras 3 layers on the JAX backend (in this process, chosen by the root
conftest) and on the PyTorch backend (a subprocess: Keras reads its backend once)."""

import importlib.util
import itertools
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("jax")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":
    pytest.skip(f"Keras runs on {keras.backend.backend()!r} here; these tests need JAX "
                "(KERAS_BACKEND=jax before keras is imported)", allow_module_level=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import xpit  # noqa: E402
from xpit.keras import AdaptiveSigmoid, Sigmoid  # noqa: E402

EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "keras_temperature.py"

# Keras 3.15's Variable.numpy() calls np.array on an object whose __array__ takes no copy=
# argument, which NumPy 2 deprecates: Keras' warning, not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def test_layers_compute_xpits_functions():
    x = np.linspace(-30, 30, 61, dtype="float32").reshape(-1, 1)
    y = Sigmoid(temperature=2.0)(x)
    assert isinstance(y, jax.Array)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(xpit.sigmoid(jnp.asarray(x) / 2)))
    layer = AdaptiveSigmoid(alpha=2.0, beta=-1.0)
    np.testing.assert_array_equal(np.asarray(layer(x)),
                                  np.asarray(xpit.sigmoid(jnp.asarray(x) * 2.0 - 1.0)))
    assert [w.name for w in layer.trainable_weights] == ["alpha", "beta"]


def test_adaptive_sigmoid_gradients_have_their_closed_forms():
    """d/dalpha = sum of sigmoid'(a x + b) x per channel, d/dbeta = sum of sigmoid'(a x + b),
    through Keras' stateless call and jax.grad."""
    layer = AdaptiveSigmoid(alpha=1.5, beta=-0.5, num_parameters=3)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(5, 3)) * 3, dtype="float32")
    layer.build(x.shape)
    weights = [jnp.asarray([0.5, 1.0, 2.0]), jnp.asarray([0.0, -1.0, 1.0])]

    def total(weights, x):
        out, _ = layer.stateless_call(weights, [], x)
        return jnp.sum(out)

    (da, db), dx = jax.grad(total, argnums=(0, 1))(weights, x)
    a, b = weights
    d = xpit.sigmoid_grad(a * x + b)
    np.testing.assert_allclose(da, jnp.sum(d * x, axis=0), rtol=1e-5, atol=1e-7)  # float32 sums
    np.testing.assert_allclose(db, jnp.sum(d, axis=0), rtol=1e-6)
    np.testing.assert_allclose(dx, d * a, rtol=1e-6)


def test_errors_name_the_layer_and_what_was_wrong(monkeypatch):
    with pytest.raises(ValueError, match=r"Sigmoid: temperature must be a positive finite"):
        Sigmoid(temperature=-1.0)
    with pytest.raises(ValueError, match=r"num_parameters must be a positive integer, got 0"):
        AdaptiveSigmoid(num_parameters=0)
    with pytest.raises(ValueError, match=r"input has shape \(4, 2\), but num_parameters=3"):
        AdaptiveSigmoid(num_parameters=3).build((4, 2))
    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    with pytest.raises(RuntimeError, match=r"Keras backend is 'tensorflow'.*Use one of 'jax', "
                                           r"'torch', 'numpy'"):
        Sigmoid().build((2,))


def test_a_model_trains_and_survives_a_save_load_round_trip():
    spec = importlib.util.spec_from_file_location("keras_temperature", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.train(epochs=4)
    losses = result["loss"]
    assert all(b < a for a, b in itertools.pairwise(losses)), losses  # decreasing
    assert result["accuracy"] > 0.9 and result["round_trip_equal"]


def test_config_round_trip():
    layer = AdaptiveSigmoid(alpha=2.0, beta=0.5, num_parameters=4, name="act")
    again = AdaptiveSigmoid.from_config(layer.get_config())
    assert (again.init_alpha, again.init_beta, again.num_parameters, again.name) == (
        2.0, 0.5, 4, "act")
    assert keras.saving.get_registered_object("xpit>Sigmoid") is Sigmoid


_TORCH_BACKEND = """
import json, numpy as np, keras, torch, xpit
from xpit.keras import AdaptiveSigmoid, Sigmoid
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), AdaptiveSigmoid(4),
                          keras.layers.Dense(1), Sigmoid(temperature=2.0)])
model.compile(optimizer="adam", loss="binary_crossentropy")
x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
y = (x[:, :1] > 0).astype("float32")
history = model.fit(x, y, epochs=3, verbose=0)
out = model(x[:2])
print(json.dumps({"backend": keras.backend.backend(), "type": type(out).__module__,
                  "loss": history.history["loss"]}))
"""


def test_the_pytorch_backend_in_a_subprocess():
    pytest.importorskip("torch")
    result = subprocess.run([sys.executable, "-c", _TORCH_BACKEND], capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "KERAS_BACKEND": "torch"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == "torch" and report["type"].startswith("torch")
    assert report["loss"][-1] < report["loss"][0]
