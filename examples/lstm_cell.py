"""One step of an LSTM cell, on any array library
==============================================

The input, forget and output gates go through ``xpit.sigmoid``. The gate layout and weight
shapes are PyTorch's ``torch.nn.LSTMCell``: ``W_ih`` is (4 * hidden, input), ``W_hh`` is
(4 * hidden, hidden), rows in the order input gate, forget gate, candidate, output gate.
With PyTorch installed, the script checks the step against ``torch.nn.LSTMCell`` with the
same weights::

    python examples/lstm_cell.py
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace

import xpit


def lstm_cell(x: Any, h: Any, c: Any, W_ih: Any, W_hh: Any, b_ih: Any, b_hh: Any
              ) -> tuple[Any, Any]:
    """The next hidden and cell states ``(h', c')`` for inputs ``x`` (batch, input)."""
    xp = array_namespace(x, h, c, W_ih, W_hh)
    gates = x @ xp.matrix_transpose(W_ih) + b_ih + h @ xp.matrix_transpose(W_hh) + b_hh
    n = h.shape[1]
    i = xpit.sigmoid(gates[:, 0 * n:1 * n])  # input gate: how much of the candidate to write
    f = xpit.sigmoid(gates[:, 1 * n:2 * n])  # forget gate: how much of the old cell to keep
    g = xp.tanh(gates[:, 2 * n:3 * n])  # candidate cell contents
    o = xpit.sigmoid(gates[:, 3 * n:4 * n])  # output gate: how much of the cell to show
    c_next = f * c + i * g
    return o * xp.tanh(c_next), c_next


def random_step(xp: Any = np, device: Any = None, batch: int = 3, inputs: int = 10,
                hidden: int = 20, seed: int = 0) -> dict[str, Any]:
    """Inputs, states and weights of one step, as NumPy arrays and as ``xp`` arrays."""
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(hidden)  # PyTorch's initialisation range
    host = {"x": rng.standard_normal((batch, inputs)), "h": rng.standard_normal((batch, hidden)),
            "c": rng.standard_normal((batch, hidden)),
            "W_ih": rng.uniform(-k, k, (4 * hidden, inputs)),
            "W_hh": rng.uniform(-k, k, (4 * hidden, hidden)),
            "b_ih": rng.uniform(-k, k, 4 * hidden), "b_hh": rng.uniform(-k, k, 4 * hidden)}
    return {"host": host, "xp": {name: xp.asarray(a, device=device) for name, a in host.items()}}


def torch_step(host: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The same step by ``torch.nn.LSTMCell``, with the same weights, in float64."""
    import torch

    cell = torch.nn.LSTMCell(host["W_ih"].shape[1], host["W_hh"].shape[1], dtype=torch.float64)
    with torch.no_grad():
        for name in ("W_ih", "W_hh", "b_ih", "b_hh"):
            getattr(cell, name.replace("W_", "weight_").replace("b_", "bias_")).copy_(
                torch.from_numpy(host[name]))
        h, c = cell(torch.from_numpy(host["x"]), (torch.from_numpy(host["h"]),
                                                 torch.from_numpy(host["c"])))
    return h.numpy(), c.numpy()


def main() -> None:
    step = random_step()
    h, c = lstm_cell(**step["xp"])
    print(f"h' = {np.array2string(h[0, :4], precision=4)} ...")
    try:
        h_torch, c_torch = torch_step(step["host"])
    except ImportError:
        print("PyTorch is not installed: no comparison with torch.nn.LSTMCell")
        return
    print(f"largest difference from torch.nn.LSTMCell: h {np.max(np.abs(h - h_torch)):.1e}, "
          f"c {np.max(np.abs(c - c_torch)):.1e}")


if __name__ == "__main__":
    main()
