"""A Keras 3 classifier with a temperature, on JAX
===============================================

The model's output layer is ``xpit.keras.Sigmoid(temperature)``. A temperature above 1
softens the predicted probabilities (useful when a model is over-confident, as in knowledge
distillation and calibration): the same logits, flatter probabilities. The model trains
with xpit's sigmoid and its own gradient, then saves to a ``.keras`` file and loads back
with the same outputs::

    KERAS_BACKEND=jax python examples/keras_temperature.py [--plot temperature.png]
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

from xpit.keras import AdaptiveSigmoid, Sigmoid


def make_data(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x @ np.array([1.0, -1.0, 0.5, 0.0, 2.0, -0.5]) + 0.3 * rng.normal(size=n) > 0)
    return x, y.astype("float32")[:, None]


def build(temperature: float) -> keras.Model:
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8),
                             AdaptiveSigmoid(num_parameters=8), keras.layers.Dense(1),
                             Sigmoid(temperature=temperature)])


def train(temperature: float = 2.0, epochs: int = 5, seed: int = 0) -> dict:
    """Train; return the loss per epoch, the accuracy, and whether a save/load round trip
    gives the same outputs."""
    keras.utils.set_random_seed(seed)
    x, y = make_data(seed=seed)
    model = build(temperature)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    same = bool(np.array_equal(np.asarray(model.predict(x, verbose=0)),
                               np.asarray(loaded.predict(x, verbose=0))))
    return {"loss": history.history["loss"], "accuracy": history.history["accuracy"][-1],
            "round_trip_equal": same}


def draw(path: str) -> None:
    """``Sigmoid(temperature)`` of the same logits at three temperatures."""
    import matplotlib.pyplot as plt

    z = np.linspace(-8.0, 8.0, 401, dtype="float32")[:, None]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for temperature in (0.5, 1.0, 2.0):
        p = np.asarray(Sigmoid(temperature=temperature)(z))
        ax.plot(z[:, 0], p[:, 0], lw=2, label=f"Sigmoid(temperature={temperature:g})")
    ax.set(xlabel="logit", ylabel="probability", title="The same logits, at three temperatures")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--plot", metavar="PATH", help="also draw the temperatures' curves")
    args = parser.parse_args(argv)
    result = train()
    print(f"loss per epoch {np.round(result['loss'], 3).tolist()}, accuracy "
          f"{result['accuracy']:.3f}, saved and loaded with equal outputs: "
          f"{result['round_trip_equal']}")
    if args.plot:
        draw(args.plot)


if __name__ == "__main__":
    main()
