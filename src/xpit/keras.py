"""Keras 3 layers of the logistic family: ``Sigmoid(temperature)`` and ``AdaptiveSigmoid``.

``import xpit`` never imports Keras; ``import xpit.keras`` does (choose the backend first,
as for any Keras program: ``KERAS_BACKEND=jax``). The layers call xpit's functions on the
backend's own tensors, so under the JAX backend they run xpit's ``jax.custom_jvp``
functions and under the PyTorch backend its PyTorch operators: the family's own
gradients, and ``jit``/``torch.compile`` friendly.

The TensorFlow backend is refused when a layer is built: TensorFlow tensors are not
array-API arrays, and xpit computes each library's arrays with that library's own code
rather than restating its formulas in TensorFlow. The JAX, PyTorch and NumPy backends work.

The layers are registered for serialisation (package ``"xpit"``), so a model that uses them
saves to a ``.keras`` file and loads back with ``keras.saving.load_model`` after
``import xpit.keras``.
"""

from __future__ import annotations

import math
from typing import Any

import keras

import xpit

__all__ = ["AdaptiveSigmoid", "Sigmoid"]

SUPPORTED_BACKENDS = ("jax", "torch", "numpy")


def _check_backend(layer: str) -> None:
    backend = keras.backend.backend()
    if backend not in SUPPORTED_BACKENDS:
        raise RuntimeError(
            f"xpit.keras.{layer}: the Keras backend is {backend!r}, which xpit does not "
            f"support: its tensors are not array-API arrays. Use one of "
            f"{', '.join(map(repr, SUPPORTED_BACKENDS))} (set KERAS_BACKEND before importing "
            "keras)")


@keras.saving.register_keras_serializable(package="xpit")
class Sigmoid(keras.layers.Layer):  # type: ignore[misc]  # Keras has no types: Layer is Any
    """``sigmoid(x / temperature)``, elementwise, with xpit's kernels and gradients.

    Parameters
    ----------
    temperature : float, default 1.0
        Positive; above 1 flattens the curve, below 1 sharpens it.
    **kwargs
        Passed to :class:`keras.layers.Layer` (``name``, ``dtype`` ...).

    Examples
    --------
    >>> import numpy as np
    >>> from xpit.keras import Sigmoid
    >>> Sigmoid(temperature=2.0).get_config()["temperature"]
    2.0
    """

    def __init__(self, temperature: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        try:
            temperature = float(temperature)
        except (TypeError, ValueError):
            raise TypeError("xpit.keras.Sigmoid: temperature must be a positive finite number, "
                            f"got {temperature!r}") from None
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError("xpit.keras.Sigmoid: temperature must be a positive finite "
                             f"number, got {temperature!r}")
        self.temperature = temperature

    def build(self, input_shape: Any) -> None:
        _check_backend("Sigmoid")
        self.built = True

    def call(self, inputs: Any) -> Any:
        if self.temperature != 1.0:
            inputs = keras.ops.divide(inputs, self.temperature)
        return xpit.sigmoid(inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="xpit")
class AdaptiveSigmoid(keras.layers.Layer):  # type: ignore[misc]  # Keras has no types
    """``sigmoid(alpha * x + beta)`` with a trainable slope ``alpha`` and shift ``beta``.

    One pair for the whole input, or one per channel of the last axis (Keras' channels-last
    convention).

    Parameters
    ----------
    alpha, beta : float, default 1.0 and 0.0
        Initial values of the weights.
    num_parameters : int, default 1
        1, or the size of the input's last axis.
    **kwargs
        Passed to :class:`keras.layers.Layer`.

    Examples
    --------
    >>> from xpit.keras import AdaptiveSigmoid
    >>> AdaptiveSigmoid(alpha=2.0, num_parameters=3).get_config()["num_parameters"]
    3
    """

    def __init__(self, alpha: float = 1.0, beta: float = 0.0, num_parameters: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, int) or (
                num_parameters < 1):
            raise ValueError("xpit.keras.AdaptiveSigmoid: num_parameters must be a positive "
                             f"integer, got {num_parameters!r}")
        self.init_alpha, self.init_beta = float(alpha), float(beta)
        self.num_parameters = num_parameters

    def build(self, input_shape: Any) -> None:
        _check_backend("AdaptiveSigmoid")
        channels = input_shape[-1] if len(input_shape) else None
        if self.num_parameters > 1 and channels != self.num_parameters:
            raise ValueError(f"xpit.keras.AdaptiveSigmoid: the input has shape "
                             f"{tuple(input_shape)}, but num_parameters={self.num_parameters} "
                             "needs that many channels in its last axis")
        shape = (self.num_parameters,) if self.num_parameters > 1 else ()
        self.alpha = self.add_weight(name="alpha", shape=shape, trainable=True,
                                     initializer=keras.initializers.Constant(self.init_alpha))
        self.beta = self.add_weight(name="beta", shape=shape, trainable=True,
                                    initializer=keras.initializers.Constant(self.init_beta))
        self.built = True

    def call(self, inputs: Any) -> Any:
        return xpit.sigmoid(keras.ops.add(keras.ops.multiply(inputs, self.alpha), self.beta))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.init_alpha, "beta": self.init_beta,
                "num_parameters": self.num_parameters}
