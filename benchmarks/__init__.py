"""The developers' benchmark suite: ``python -m benchmarks`` (see ``__main__``)."""
