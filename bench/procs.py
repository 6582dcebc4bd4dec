"""Process figures the benchmarks print (imported by the scripts beside it)."""

from __future__ import annotations

from pathlib import Path

import psutil


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory so far (the kernel's high-water mark, VmHWM,
    which psutil does not report), in MB; None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return None


def python_children(pid: int) -> list[int]:
    """The Python processes whose parent is ``pid`` (xdist's workers, not Helm)."""
    try:
        children = psutil.Process(pid).children()
    except psutil.Error:
        return []
    found = []
    for child in children:
        try:
            argv0 = (child.cmdline() or [""])[0]
        except psutil.Error:
            continue
        if "python" in Path(argv0).name:
            found.append(child.pid)
    return found
