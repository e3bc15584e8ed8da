"""skinlab's benchmarks (not tests): ``python -m bench`` runs them and writes
``bench/results.md`` and ``bench/results.json``. See ``docs/PERFORMANCE.md``."""
