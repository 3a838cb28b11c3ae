"""The vanishing gradient through a deep sigmoid network
=====================================================

How the gradient shrinks on its way back through a deep sigmoid network. The sigmoid's
derivative is at most 1/4, so with weights scaled to keep the signal's variance
(Xavier/Glorot initialisation) each layer divides the gradient by four or more on the way
back: after 30 layers almost nothing reaches the input. With larger weights (standard
normal) the units saturate instead. The network is ``xpit.plot.gradient_norms``: forward
with ``xpit.sigmoid``, backward with ``xpit.sigmoid_backward`` from the stored forward
outputs, on any array library::

    python examples/vanishing_gradient.py --plot vanishing_gradient.png
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from xpit.plot import gradient_norms


def table(xp: Any = np, device: Any = None, depth: int = 30, width: int = 128
          ) -> dict[str, list[float]]:
    """Gradient norm per layer (first layer first) for both initialisations."""
    return {init: gradient_norms(depth, width, init=init, xp=xp, device=device)
            for init in ("normal", "xavier")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--depth", type=int, default=30)
    parser.add_argument("--plot", metavar="PATH", help="also draw the figure (matplotlib)")
    args = parser.parse_args(argv)
    norms = table(depth=args.depth)
    print(f"{'layer':>5} {'standard normal':>16} {'Xavier':>12}")
    for layer in range(0, args.depth, max(1, args.depth // 10)):
        print(f"{layer + 1:5d} {norms['normal'][layer]:16.3e} {norms['xavier'][layer]:12.3e}")
    if args.plot:
        from xpit.plot import vanishing_gradient_figure

        vanishing_gradient_figure(depth=args.depth).savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
