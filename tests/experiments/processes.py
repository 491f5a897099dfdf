"""Killing a real experiment subprocess at a chosen moment, for the resume tests."""

import signal
import subprocess
import time
from pathlib import Path


def sigkill_when_written(process: subprocess.Popen, path: Path, timeout: float = 300.0) -> None:
    """SIGKILL ``process`` as soon as ``path`` exists (or it exits, or ``timeout`` passes) and
    check that the kill, not a normal exit, ended it."""
    deadline = time.monotonic() + timeout
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, f"the process ended by itself (code {process.returncode})"
