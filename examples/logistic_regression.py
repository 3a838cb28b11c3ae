"""Logistic regression by gradient descent, on any array library
=============================================================

Binary logistic regression, written once against the array API. The loss is
``xpit.binary_cross_entropy_with_logits`` (stable for any logits), and its gradient with
respect to the logits is ``sigmoid(z) - y``, computed with ``xpit.sigmoid``: no overflow
warning even with a large learning rate. The same code runs on NumPy, CuPy, PyTorch or
array-api-strict::

    python examples/logistic_regression.py                 # NumPy
    python examples/logistic_regression.py --library torch
    python examples/logistic_regression.py --plot boundary.png
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from array_api_compat import array_namespace

import xpit


def fit(X: Any, y: Any, *, learning_rate: float = 0.5, epochs: int = 500) -> tuple[Any, Any]:
    """Weights and bias minimising the mean binary cross-entropy; X is (n, d), y is (n,)."""
    xp = array_namespace(X)
    n, d = X.shape
    w = xp.zeros(d, dtype=X.dtype, device=X.device)
    b = xp.zeros((), dtype=X.dtype, device=X.device)
    for _ in range(epochs):
        z = X @ w + b
        error = xpit.sigmoid(z) - y  # d loss / d z, for every sample
        w = w - learning_rate * (error @ X) / n
        b = b - learning_rate * xp.mean(error)
    return w, b


def loss(X: Any, y: Any, w: Any, b: Any) -> float:
    return float(xpit.binary_cross_entropy_with_logits(X @ w + b, y))


def accuracy(X: Any, y: Any, w: Any, b: Any) -> float:
    xp = array_namespace(X)
    predicted = xp.astype(X @ w + b > 0, y.dtype)
    return float(xp.mean(xp.astype(predicted == y, X.dtype)))


def data() -> list[np.ndarray]:
    """The problem of the README, as NumPy arrays: X_train, X_test, y_train, y_test."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    X, y = make_classification(n_samples=1000, n_features=2, n_redundant=0, n_informative=2,
                               n_clusters_per_class=1, random_state=42)
    return train_test_split(X, y.astype(np.float64), test_size=0.2, random_state=42)


def compare(xp: Any = np, device: Any = None, learning_rate: float = 0.5) -> dict[str, float]:
    """Train on ``xp`` arrays on ``device``; test accuracies of xpit's and scikit-learn's."""
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = data()
    Xa, Xb, ya, yb = (xp.asarray(a, device=device) for a in (X_train, X_test, y_train, y_test))
    w, b = fit(Xa, ya, learning_rate=learning_rate)
    sk = LogisticRegression().fit(X_train, y_train)
    return {"xpit": accuracy(Xb, yb, w, b), "scikit-learn": sk.score(X_test, y_test),
            "loss": loss(Xa, ya, w, b)}


def draw(path: str) -> None:
    """The test points and the decision boundaries of xpit's fit and scikit-learn's."""
    import matplotlib.pyplot as plt
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = data()
    w, b = fit(X_train, y_train)
    sk = LogisticRegression().fit(X_train, y_train)
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for label, colour in ((0.0, "C0"), (1.0, "C3")):
        points = X_test[y_test == label]
        ax.scatter(points[:, 0], points[:, 1], s=14, color=colour, alpha=0.7,
                   label=f"test points of class {label:.0f}")
    xs = np.linspace(X_test[:, 0].min(), X_test[:, 0].max(), 2)
    for (coef, intercept), name, style in (((w, b), "xpit, gradient descent", "-"),
                                           ((sk.coef_[0], sk.intercept_[0]),
                                            "scikit-learn LogisticRegression", "--")):
        ax.plot(xs, -(coef[0] * xs + intercept) / coef[1], style, color="black", label=name)
    ax.set(xlabel="feature 1", ylabel="feature 2", ylim=(X_test[:, 1].min() - 0.5,
                                                         X_test[:, 1].max() + 0.5),
           title="Decision boundaries: sigmoid(w . x + b) = 1/2")
    ax.legend(fontsize="small", loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--library", choices=("numpy", "torch", "cupy", "array_api_strict"),
                        default="numpy")
    parser.add_argument("--learning-rate", type=float, default=0.5)
    parser.add_argument("--plot", metavar="PATH", help="also draw the decision boundaries")
    args = parser.parse_args(argv)
    xp = np
    if args.library != "numpy":
        import importlib

        xp = array_namespace(importlib.import_module(args.library).asarray(0.0))
    result = compare(xp, learning_rate=args.learning_rate)
    print(f"xpit gradient descent on {args.library}: training loss {result['loss']:.4f}, "
          f"test accuracy {result['xpit']:.3f}")
    print(f"scikit-learn LogisticRegression: test accuracy {result['scikit-learn']:.3f}")
    if args.plot:
        draw(args.plot)


if __name__ == "__main__":
    main()
