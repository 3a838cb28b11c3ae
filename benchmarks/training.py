"""A training step on the CPU with xpit's PyTorch modules against PyTorch's own.

A 784-128-1 model (MNIST-sized input, one hidden layer) at batch 1024: forward, loss,
backward and an SGD step, timed interleaved in one process (one step of each variant in
turn, in a new random order each round, the median of the repeats), so a noisy machine
slows all variants alike and none gains from its place in the round:

- the hidden activation: ``torch.nn.Sigmoid`` against ``xpit.torch.Sigmoid``;
- the loss (``pos_weight`` set, as for an imbalanced class): ``torch.nn.BCEWithLogitsLoss``
  against ``xpit.torch.BCEWithLogitsLoss``;
- the first variant a second time, a control: its ratio is the run's resolution;

and then the two losses alone, forward and backward, without the model around them.

    python -m benchmarks.training [--repeats 200] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see xpit.bench

import torch

from xpit.torch import BCEWithLogitsLoss, Sigmoid


def make_step(activation: torch.nn.Module, loss_fn: torch.nn.Module, seed: int = 0
              ) -> Callable[[], float]:
    """One training step of a fresh 784-128-1 model on a fixed batch of 1024."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1024, 784, generator=gen)
    y = (torch.rand(1024, 1, generator=gen) < 0.2).float()
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), activation, torch.nn.Linear(128, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def run(repeats: int = 200) -> dict[str, float]:
    """Median seconds per step of each variant."""
    pos_weight = torch.tensor([4.0])
    variants = {
        "torch.nn.Sigmoid + torch BCEWithLogitsLoss":
            make_step(torch.nn.Sigmoid(), torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)),
        "xpit.torch.Sigmoid + torch BCEWithLogitsLoss":
            make_step(Sigmoid(), torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)),
        "torch.nn.Sigmoid + xpit BCEWithLogitsLoss":
            make_step(torch.nn.Sigmoid(), BCEWithLogitsLoss(pos_weight=pos_weight)),
        "xpit.torch.Sigmoid + xpit BCEWithLogitsLoss":
            make_step(Sigmoid(), BCEWithLogitsLoss(pos_weight=pos_weight)),
        # The first variant again: how far apart two identical variants come out in this run,
        # the resolution of the ratios above.
        "torch (the first variant, again)":
            make_step(torch.nn.Sigmoid(), torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)),
    }
    for step in variants.values():  # warm up
        for _ in range(5):
            step()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    order, shuffle = list(variants), random.Random(0).shuffle
    for _ in range(repeats):
        shuffle(order)  # a new order each round: no variant always follows the same one
        for name in order:
            start = time.perf_counter()
            variants[name]()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def run_loss_alone(repeats: int = 2000) -> dict[str, float]:
    """Median seconds of the loss alone, forward and backward, on the step's 1024 logits
    (a leaf tensor), PyTorch's module and xpit's interleaved: the cost without the model
    around it, whose matrix products leave the caches cold for the loss's Python."""
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(1024, 1, generator=gen)
    labels = (torch.rand(1024, 1, generator=gen) < 0.2).float()
    pos_weight = torch.tensor([4.0])
    losses = {"torch BCEWithLogitsLoss alone": torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight),
              "xpit BCEWithLogitsLoss alone": BCEWithLogitsLoss(pos_weight=pos_weight)}
    samples: dict[str, list[float]] = {name: [] for name in losses}
    for _ in range(repeats):
        for name, loss_fn in losses.items():
            z = logits.clone().requires_grad_(True)
            start = time.perf_counter()
            loss_fn(z, labels).backward()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None,
                        help="PyTorch's intra-op threads (default: PyTorch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    times = run(args.repeats)
    base = times["torch.nn.Sigmoid + torch BCEWithLogitsLoss"]
    print(f"training step, 784-128-1, batch 1024, float32, {torch.get_num_threads()} threads, "
          f"PyTorch {torch.__version__}; median of {args.repeats} interleaved steps")
    for name, seconds in times.items():
        print(f"{name:46} {seconds * 1e3:8.3f} ms  {seconds / base:6.3f}x")
    alone = run_loss_alone(10 * args.repeats)
    base = alone["torch BCEWithLogitsLoss alone"]
    print(f"the loss alone, forward and backward on 1024 logits; median of {10 * args.repeats}")
    for name, seconds in alone.items():
        print(f"{name:46} {seconds * 1e6:8.1f} us  {seconds / base:6.3f}x")


if __name__ == "__main__":
    main()
