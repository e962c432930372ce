"""How many threads the package's side-by-side work uses (a neutral module: imported by
the synthetic generator, imagery and training alike)."""

from __future__ import annotations

import os


def n_workers(n_jobs: int | None) -> int:
    """Threads for ``n_jobs`` (``None``: 1, ``-1``: every core this process may use — its
    CPU affinity where the platform has one, else the machine's cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)
    if n_jobs is None:
        return 1
    return cores if n_jobs < 0 else max(1, min(n_jobs, cores))
