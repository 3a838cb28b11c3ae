"""Figures: the sigmoid and its derivative, the family, and the vanishing gradient.

``xpit plot NAME -o FILE.png`` draws them; matplotlib is the optional extra
``plot`` and is imported only here. :func:`gradient_norms` is the computation
behind the vanishing-gradient figure and ``examples/vanishing_gradient.py``:
a deep sigmoid network, forward with :func:`xpit.sigmoid`, backward with
:func:`xpit.sigmoid_backward`, written against the array API.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import xpit

__all__ = ["FIGURES", "family_figure", "gradient_norms", "save", "sigmoid_figure",
           "vanishing_gradient_figure"]


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("xpit plot needs matplotlib; install it with "
                          "pip install 'xpit[plot]'") from None
    return plt


def gradient_norms(depth: int = 30, width: int = 128, *, init: str = "xavier",
                   xp: Any = np, device: Any = None, seed: int = 0) -> list[float]:
    """The norm of the loss gradient at each layer of a deep sigmoid network.

    ``depth`` dense layers of ``width`` units with sigmoid activations take a
    batch of 64 standard-normal inputs; the gradient of ``sum(output)`` is
    propagated back with :func:`xpit.sigmoid_backward` from the stored forward
    outputs.

    Parameters
    ----------
    depth, width : int
        Layers, and units per layer.
    init : {'xavier', 'normal'}
        Glorot's uniform weights (variance 2 / (fan_in + fan_out)), or standard normal
        weights.
    xp : namespace
        The array-API namespace to compute in (NumPy by default).
    device : optional
        The device of ``xp`` to compute on.
    seed : int
        Seed of the weights and inputs (drawn with NumPy, then moved to ``xp``).

    Returns
    -------
    list of float
        The gradient norms with respect to each layer's pre-activation, first layer
        first.

    Examples
    --------
    >>> norms = gradient_norms(depth=10, width=32)
    >>> len(norms), norms[0] < norms[-1]
    (10, True)
    """
    if init not in ("xavier", "normal"):
        raise ValueError(f"gradient_norms: init must be 'xavier' or 'normal', got {init!r}")
    rng = np.random.default_rng(seed)
    bound = math.sqrt(6.0 / (2 * width))
    weights = [xp.asarray(rng.uniform(-bound, bound, (width, width)) if init == "xavier"
                          else rng.standard_normal((width, width)), device=device)
               for _ in range(depth)]
    a = xp.asarray(rng.standard_normal((64, width)), device=device)
    outputs = []
    for w in weights:  # forward: keep each layer's sigmoid output for the backward pass
        a = xpit.sigmoid(a @ w)
        outputs.append(a)
    grad = xp.ones_like(a)  # d sum(output) / d output
    norms = []
    for w, s in zip(reversed(weights), reversed(outputs), strict=True):
        grad = xpit.sigmoid_backward(s, grad)  # through the sigmoid: grad * s * (1 - s)
        norms.append(float(xp.sqrt(xp.sum(grad * grad))))
        grad = grad @ xp.matrix_transpose(w)  # through the weights, to the layer below
    return norms[::-1]


def sigmoid_figure() -> Any:
    """The sigmoid and its derivative, with the derivative's maximum of 1/4 at 0 marked.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, open: save it with ``savefig`` and close it with
        ``matplotlib.pyplot.close``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from xpit.plot import sigmoid_figure
    >>> fig = sigmoid_figure()
    >>> fig.axes[0].get_title()
    'The sigmoid and its derivative'
    >>> plt.close(fig)
    """
    plt = _pyplot()
    x = np.linspace(-8, 8, 801)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(x, xpit.sigmoid(x), label=r"sigmoid $\sigma(x) = 1 / (1 + e^{-x})$", lw=2)
    ax.plot(x, xpit.sigmoid_grad(x), label=r"derivative $\sigma(x)\,(1 - \sigma(x))$", lw=2)
    ax.plot([0], [0.25], "o", color="C1")
    ax.annotate("maximum 0.25 at x = 0", (0, 0.25), xytext=(1.2, 0.36),
                arrowprops={"arrowstyle": "->", "color": "C1"})
    ax.axhline(0.5, color="0.7", lw=0.8, ls=":")
    ax.set(xlabel="x", ylabel="value", title="The sigmoid and its derivative",
           ylim=(-0.03, 1.05))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def family_figure() -> Any:
    """The sigmoid, tanh, softplus and log-sigmoid on one axis.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, open: save it with ``savefig`` and close it with
        ``matplotlib.pyplot.close``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from xpit.plot import family_figure
    >>> fig = family_figure()
    >>> fig.axes[0].get_title()
    'The logistic family'
    >>> plt.close(fig)
    """
    plt = _pyplot()
    x = np.linspace(-5, 5, 801)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(x, xpit.sigmoid(x), label="sigmoid", lw=2)
    ax.plot(x, np.tanh(x), label=r"tanh $= 2\,\sigma(2x) - 1$", lw=2)
    ax.plot(x, xpit.softplus(x), label=r"softplus $\log(1 + e^{x})$", lw=2)
    ax.plot(x, xpit.log_sigmoid(x), label=r"log-sigmoid $= -$softplus$(-x)$", lw=2)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set(xlabel="x", ylabel="value", title="The logistic family", ylim=(-5.3, 5.3))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def vanishing_gradient_figure(depth: int = 30, width: int = 128) -> Any:
    """Gradient norm per layer of a deep sigmoid network: standard normal vs Xavier init.

    Parameters
    ----------
    depth, width : int
        Layers and units per layer, as for :func:`gradient_norms`.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, open: save it with ``savefig`` and close it with
        ``matplotlib.pyplot.close``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from xpit.plot import vanishing_gradient_figure
    >>> fig = vanishing_gradient_figure(depth=8, width=16)
    >>> fig.axes[0].get_title()
    'Vanishing gradient through 8 sigmoid layers of 16 units'
    >>> plt.close(fig)
    """
    plt = _pyplot()
    layers = np.arange(1, depth + 1)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for init, label in (("normal", "standard normal weights"), ("xavier", "Xavier (Glorot)")):
        norms = gradient_norms(depth, width, init=init)
        factor = (norms[0] / norms[-1]) ** (1 / (depth - 1))  # per layer, towards the input
        ax.plot(layers, norms, marker="o", ms=3, label=f"{label}: x{factor:.2f} per layer")
    ax.set_yscale("log")
    ax.set(xlabel="layer (1 = nearest the input)", ylabel="gradient norm (log scale)",
           title=f"Vanishing gradient through {depth} sigmoid layers of {width} units")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


#: The figures by name, as ``xpit plot NAME`` and :func:`save` take them: functions that
#: return a new figure.
FIGURES = {"sigmoid": sigmoid_figure, "family": family_figure,
           "vanishing-gradient": vanishing_gradient_figure}


def save(name: str, path: str) -> None:
    """Draw figure ``name`` (one of :data:`FIGURES`) into ``path`` (PNG, SVG, PDF...).

    Parameters
    ----------
    name : {'sigmoid', 'family', 'vanishing-gradient'}
        The figure.
    path : str or path
        Where to write it; the format follows the extension.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from xpit.plot import save
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sigmoid.png"
    >>> save("sigmoid", path)
    >>> path.read_bytes()[:4]
    b'\x89PNG'
    """
    if name not in FIGURES:
        raise ValueError(f"xpit.plot: unknown figure {name!r}; expected one of "
                         f"{', '.join(map(repr, FIGURES))}")
    fig = FIGURES[name]()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
