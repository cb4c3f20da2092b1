"""How many CPUs this process may use: what every thread pool of the product is sized by.

`os.cpu_count()` counts the host's CPUs. In a container limited to 2 CPUs of a 64-core host (a CPU
quota: `docker run --cpus 2`, a Kubernetes limit) or pinned with `taskset`, it still says 64, and a
pool of 64 threads on 2 CPUs' worth of time mostly waits: llama.cpp's threads spin, and its decoding
falls from ~70 to under 1 token/s once they outnumber the CPUs they get (../shared/docs/ENVIRONMENT.md).
The usable count is the smallest of the CPUs the process may run on (its affinity) and its cgroup's
CPU quota (v2 `cpu.max` or v1 `cpu.cfs_quota_us`, on its own cgroup and every one above), rounded up.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
SYSFS_CPUS = Path("/sys/devices/system/cpu")


@lru_cache(maxsize=1)
def usable_cpus() -> int:
    """CPUs this process can use (at least 1), read once."""
    return count_usable(CGROUP_ROOT, Path("/proc/self/cgroup"))


@lru_cache(maxsize=1)
def usable_cores() -> int:
    """Physical cores among the usable CPUs, read once: what llama.cpp's threads are sized by. Its
    decoding is bound by each core's arithmetic and memory bandwidth, so a second thread on an SMT
    sibling adds nothing but a spinning waiter, while a second real core helps."""
    return count_cores(SYSFS_CPUS, usable_cpus())


def count_cores(sysfs: Path, usable: int) -> int:
    """Distinct (package, core) pairs of the CPUs in this process's affinity, at most `usable`; every
    usable CPU where the topology cannot be read (another OS, a sandbox without /sys)."""
    cores = set()
    for cpu in sorted(allowed_cpus()):
        topology = sysfs / f"cpu{cpu}" / "topology"
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(), (topology / "core_id").read_text().strip()))
        except OSError:
            return usable
    return max(1, min(usable, len(cores)))


def allowed_cpus() -> set[int]:
    """The CPU numbers this process may run on (its affinity; every CPU where the OS has none)."""
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


def count_usable(root: Path, membership: Path) -> int:
    count = len(allowed_cpus())
    quota = cgroup_quota(root, membership)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def cgroup_quota(root: Path, membership: Path) -> float | None:
    """CPUs' worth of time the process's cgroups allow (the tightest of them), None when unlimited
    or unknown (no cgroup file system, another OS)."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        lines = []
    quotas = []
    for line in lines:
        number, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if number == "0" and controllers == "":  # cgroup v2: /sys/fs/cgroup/<path>/cpu.max
            quotas += [_v2_quota(folder) for folder in _up_from(root, path)]
        elif "cpu" in controllers.split(","):  # cgroup v1: /sys/fs/cgroup/cpu/<path>/cpu.cfs_quota_us
            quotas += [_v1_quota(folder) for folder in _up_from(root / "cpu", path)]
    known = [q for q in quotas if q is not None]
    return min(known) if known else None


def _up_from(base: Path, path: str) -> list[Path]:
    """The cgroup folder of `path` under `base` and each one above it, up to `base` itself."""
    parts = [p for p in path.strip().split("/") if p and p not in (".", "..")]
    return [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _v2_quota(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None
