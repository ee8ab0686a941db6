"""albus benchmarks: `python -m bench [--smoke]` (see docs/benchmarks.md)."""
