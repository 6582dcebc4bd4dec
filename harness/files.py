"""Files the harness writes: whole or not at all, and private when they hold credentials."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_atomic(path: Path, data: str | bytes, *, private: bool = False) -> Path:
    """Replace ``path`` whole, so a reader never sees half a file (a results.json read while
    the run goes, an ownership record read by a sweep). ``private``: readable by its owner
    only, from the moment it exists (kubeconfigs hold credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        if private:
            os.chmod(scratch, 0o600)  # whatever the umask made of it
        os.replace(scratch, path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return path
