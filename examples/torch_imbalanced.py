"""A PyTorch classifier on imbalanced data
=======================================

``AdaptiveSigmoid`` and a weighted loss. One positive for every nine negatives:
``BCEWithLogitsLoss(pos_weight=9)`` weighs the rare positives as much as the negatives, so
the model does not settle for "always negative"; a hidden layer with a learned sigmoid
(slope and shift per unit) feeds it::

    python examples/torch_imbalanced.py [--plot recall.png]
"""

from __future__ import annotations

import argparse

import torch

from xpit.torch import AdaptiveSigmoid, BCEWithLogitsLoss


def make_data(n: int = 4000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two Gaussian blobs in 8 dimensions, 10 % positives."""
    gen = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, 1, generator=gen) < 0.1).float()
    x = torch.randn(n, 8, generator=gen) + 1.5 * y * torch.linspace(1.0, 0.2, 8)
    return x, y


def train(pos_weight: float | None, epochs: int = 60, seed: int = 0) -> dict[str, float]:
    """Train, then report the loss and the recall and precision on the positives."""
    torch.manual_seed(seed)
    x, y = make_data(seed=seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), AdaptiveSigmoid(num_parameters=16),
                                torch.nn.Linear(16, 1))
    weight = None if pos_weight is None else torch.tensor([pos_weight])
    loss_fn = BCEWithLogitsLoss(pos_weight=weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = model(x) > 0
    positives = y.bool()
    true_pos = (predicted & positives).sum().item()
    return {"loss": loss.item(),
            "recall": true_pos / max(1, positives.sum().item()),
            "precision": true_pos / max(1, predicted.sum().item())}


def draw(results: dict[str, dict[str, float]], path: str) -> None:
    """Recall and precision on the positives, without and with ``pos_weight``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for i, metric in enumerate(("recall", "precision")):
        values = [r[metric] for r in results.values()]
        bars = ax.bar([k + 0.38 * i for k in range(len(values))], values, width=0.36,
                      label=f"{metric} on the positives")
        ax.bar_label(bars, fmt="%.2f")
    ax.set_xticks([k + 0.19 for k in range(len(results))], list(results))
    ax.set(ylim=(0, 1.1), title="One positive in ten: the weighted loss finds them")
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--plot", metavar="PATH", help="also draw recall and precision")
    args = parser.parse_args(argv)
    results = {}
    for pos_weight in (None, 9.0):
        result = train(pos_weight)
        results[f"pos_weight={pos_weight}"] = result
        print(f"pos_weight={pos_weight}: loss {result['loss']:.3f}, recall on the positives "
              f"{result['recall']:.2f}, precision {result['precision']:.2f}")
    if args.plot:
        draw(results, args.plot)


if __name__ == "__main__":
    main()
