"""A scikit-learn transformer: squash features through a scaled, tempered sigmoid.

scikit-learn is an optional extra (``pip install "xpit[sklearn]"``) and is
imported only when this module is. With ``sklearn.config_context(
array_api_dispatch=True)`` the transformer takes and returns arrays of the
input's own library (PyTorch, CuPy, array-api-strict), on the input's device.

>>> import numpy as np
>>> from xpit.sklearn import SigmoidTransformer
>>> X = np.array([[-2.0, 0.0], [0.0, 2.0]])
>>> t = SigmoidTransformer(feature_range=(-1, 1), temperature=2.0).fit(X)
>>> t.transform(X)
array([[-0.46211716,  0.        ],
       [ 0.        ,  0.46211716]])
>>> t.inverse_transform(t.transform(X))
array([[-2.,  0.],
       [ 0.,  2.]])
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._array_api import check_same_namespace, get_namespace_and_device
from sklearn.utils.validation import check_is_fitted, validate_data

import xpit
from xpit._dtypes import has_float64

__all__ = ["SigmoidTransformer"]


class SigmoidTransformer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]  # scikit-learn has no types: its bases are Any
    """Map each feature through ``low + (high - low) * sigmoid(X / temperature)``.

    A smooth, bounded alternative to min-max scaling: no statistics are learnt,
    outliers are squashed rather than clipped, and the map is invertible.

    Parameters
    ----------
    feature_range : tuple (low, high), default=(0, 1)
        The open interval the output lies in; ``low < high``, both finite.
    temperature : float, default=1.0
        Divides the input first: larger values flatten the curve. Must be > 0.

    Attributes
    ----------
    feature_range_ : array of shape (2,)
        ``(low, high)``, checked, in the library and on the device of the data
        seen in :meth:`fit`; later calls must use the same library and device.
    n_features_in_ : int
        Number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features seen during :meth:`fit`, when they are all strings.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from xpit.sklearn import SigmoidTransformer
    >>> X = np.array([[1.0, 200.0], [2.0, 300.0], [3.0, 400.0]])
    >>> make_pipeline(StandardScaler(), SigmoidTransformer()).fit_transform(X)
    array([[0.22710252, 0.22710252],
           [0.5       , 0.5       ],
           [0.77289748, 0.77289748]])
    """

    def __init__(self, feature_range: tuple[float, float] = (0, 1),
                 temperature: float = 1.0) -> None:
        self.feature_range = feature_range
        self.temperature = temperature

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _check_params(self) -> tuple[float, float, float]:
        name = type(self).__name__
        try:
            low, high = self.feature_range
        except (TypeError, ValueError):
            raise ValueError(f"{name}: feature_range must be a pair (low, high), got "
                             f"{self.feature_range!r}") from None
        for value in (low, high, self.temperature):
            if not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"{name}: feature_range and temperature must be finite real "
                                 f"numbers, got feature_range={self.feature_range!r}, "
                                 f"temperature={self.temperature!r}")
        if not low < high:
            raise ValueError(f"{name}: feature_range needs low < high, got {self.feature_range!r}")
        if not self.temperature > 0:
            raise ValueError(f"{name}: temperature must be > 0, got {self.temperature!r}")
        return float(low), float(high), float(self.temperature)

    def fit(self, X: Any, y: Any = None) -> SigmoidTransformer:
        """Check the parameters and record the number (and names) of the features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data; only its number of features (and their names) is recorded.
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        SigmoidTransformer
            This transformer, fitted.

        Examples
        --------
        >>> import numpy as np
        >>> from xpit.sklearn import SigmoidTransformer
        >>> SigmoidTransformer().fit(np.zeros((3, 2))).n_features_in_
        2
        """
        low, high, _ = self._check_params()
        X = validate_data(self, X, dtype="numeric")
        xp, _, device = get_namespace_and_device(X)
        self.feature_range_ = xp.asarray([low, high], device=device,
                                         dtype=xp.float64 if has_float64(xp, device) else None)
        return self

    def transform(self, X: Any) -> Any:
        """``low + (high - low) * sigmoid(X / temperature)``, in X's library and dtype.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data, with the features seen in :meth:`fit`.

        Returns
        -------
        array of shape (n_samples, n_features)
            Values in the open interval ``feature_range``.

        Examples
        --------
        >>> import numpy as np
        >>> from xpit.sklearn import SigmoidTransformer
        >>> X = np.array([[-1.0], [0.0], [1.0]])
        >>> SigmoidTransformer(feature_range=(-1, 1)).fit(X).transform(X)
        array([[-0.46211716],
               [ 0.        ],
               [ 0.46211716]])
        """
        check_is_fitted(self)
        low, high, temperature = self._check_params()
        X = validate_data(self, X, dtype="numeric", reset=False)
        check_same_namespace(X, self, attribute="feature_range_", method="transform")
        return low + (high - low) * xpit.sigmoid(X / temperature)

    def inverse_transform(self, X: Any) -> Any:
        """``temperature * logit((X - low) / (high - low))``; NaN outside the range.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Transformed data, in ``feature_range``.

        Returns
        -------
        array of shape (n_samples, n_features)
            The data before :meth:`transform`: -inf and inf at the ends of the range.

        Examples
        --------
        >>> import numpy as np
        >>> from xpit.sklearn import SigmoidTransformer
        >>> t = SigmoidTransformer().fit(np.zeros((1, 1)))
        >>> t.inverse_transform(np.array([[0.0], [0.5], [0.75]]))
        array([[      -inf],
               [0.        ],
               [1.09861229]])
        """
        check_is_fitted(self)
        low, high, temperature = self._check_params()
        X = validate_data(self, X, dtype="numeric", reset=False)
        check_same_namespace(X, self, attribute="feature_range_", method="inverse_transform")
        return temperature * xpit.logit((X - low) / (high - low))
