"""``xpit.sklearn.SigmoidTransformer``: scikit-learn's own checks, pipelines, array-API input."""

from __future__ import annotations

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from array_api_extra.testing import assert_close  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import xpit  # noqa: E402
from xpit import _registry  # noqa: E402
from xpit.sklearn import SigmoidTransformer  # noqa: E402

CUPY_USABLE, CUPY_REASON = _registry.probe("cupy")


def _unusable(namespace: str | None, device: str | None) -> str | None:
    """Why a namespace/device pair of scikit-learn's array-API checks cannot run here, or None.

    The device is asked, not the build: PyPI's CUDA build of PyTorch has
    ``torch.backends.cuda.is_built()`` True on a machine without a GPU, which
    scikit-learn takes for a usable device.
    """
    if namespace == "cupy" and not CUPY_USABLE:
        return f"CuPy is installed but not usable: {CUPY_REASON}"
    if namespace == "torch" and device not in (None, "cpu"):
        import torch

        backend = getattr(torch, device, None) if device != "mps" else torch.backends.mps
        if backend is None or not backend.is_available():
            return f"PyTorch has no usable {device!r} device here"
    return None


def _pairs(check) -> list[tuple[str | None, str | None]]:
    """The (namespace, device) pairs one scikit-learn check uses."""
    keywords = getattr(check, "keywords", {})
    pairs = [(keywords.get("array_namespace"), keywords.get("device_name"))]
    pairs += [tuple(keywords[k]) for k in ("X_ns_and_device", "other_ns_and_device")
              if k in keywords]
    return pairs


@parametrize_with_checks([SigmoidTransformer(),
                          SigmoidTransformer(feature_range=(-1, 1), temperature=2.5)])
def test_scikit_learn_checks(estimator, check):
    for namespace, device in _pairs(check):
        if (reason := _unusable(namespace, device)) is not None:
            pytest.skip(reason)
    check(estimator)


def test_transform_and_inverse():
    X = np.array([[-3.0, 0.0, 5.0], [1.0, 2.0, -1.0]])
    t = SigmoidTransformer(feature_range=(2, 4), temperature=0.5).fit(X)
    Y = t.transform(X)
    assert_close(Y, 2 + 2 * xpit.sigmoid(X / 0.5))
    assert_close(t.inverse_transform(Y), X, rtol=1e-12)
    assert list(t.get_feature_names_out()) == ["x0", "x1", "x2"]
    assert t.n_features_in_ == 3


def test_float32_is_kept():
    X = np.ones((3, 2), dtype=np.float32)
    assert SigmoidTransformer().fit_transform(X).dtype == np.float32


@pytest.mark.parametrize(("params", "message"), [
    ({"temperature": 0.0}, "temperature must be > 0, got 0.0"),
    ({"temperature": -1}, "temperature must be > 0"),
    ({"feature_range": (1, 1)}, r"feature_range needs low < high, got \(1, 1\)"),
    ({"feature_range": (2, 1)}, "feature_range needs low < high"),
    ({"feature_range": 3}, "feature_range must be a pair"),
    ({"temperature": float("nan")}, "feature_range and temperature must be finite real"),
    ({"feature_range": ("a", "b")}, "feature_range and temperature must be finite real"),
])
def test_bad_parameters_are_reported_at_fit(params, message):
    with pytest.raises(ValueError, match=f"SigmoidTransformer: {message}"):
        SigmoidTransformer(**params).fit(np.ones((2, 2)))


def test_in_a_pipeline():
    X = np.array([[1.0, 200.0], [2.0, 300.0], [3.0, 400.0]])
    pipe = make_pipeline(StandardScaler(), SigmoidTransformer())
    out = pipe.fit_transform(X)
    assert_close(out, xpit.sigmoid(StandardScaler().fit_transform(X)))
    assert_close(pipe.inverse_transform(out), X, rtol=1e-12)


def test_array_api_dispatch_keeps_the_input_library(target):
    X = np.random.default_rng(0).normal(size=(5, 3))
    Xt = target.asarray(X)
    with sklearn.config_context(array_api_dispatch=True):
        t = SigmoidTransformer(feature_range=(-1, 1)).fit(Xt)
        Y = t.transform(Xt)
        back = t.inverse_transform(Y)
    assert type(Y) is type(Xt) and Y.device == Xt.device
    assert_close(Y, target.asarray(-1 + 2 * xpit.sigmoid(X)))
    assert_close(back, Xt, rtol=1e-12)


def test_scikit_learn_is_not_imported_by_xpit():
    import subprocess
    import sys

    code = "import sys, xpit; xpit.sigmoid(1.0); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "False", out.stderr
