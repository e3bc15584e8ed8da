"""Shared pieces of the benchmarks: timing, the machine's description, result rows."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Row:
    """One measured figure: ``value`` next to ``baseline_value`` measured side by side in the same
    run; ``ratio`` is how many times faster (or, for ``kind="ratio_max"``, how many times slower)
    skinlab is than the baseline."""

    benchmark: str
    case: str
    baseline: str
    baseline_value: float | None
    value: float | None
    unit: str
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Skipped:
    benchmark: str
    reason: str

    def as_dict(self) -> dict:
        return {"benchmark": self.benchmark, "skipped": self.reason}


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def machine() -> dict:
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "load_average_at_start": _loadavg(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import torchvision

        info["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover
        pass
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def bench_cache_root() -> Path:
    """Where benchmark datasets live: outside the repository, reused between runs."""
    from skinlab.data import cache_dir

    return cache_dir()
