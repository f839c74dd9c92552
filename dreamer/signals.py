"""Turn `kill` (SIGTERM) into the same checkpoint-and-exit path as Ctrl-C.

Long commands (training, generate) save a checkpoint when they see KeyboardInterrupt. A job
started in the background ignores SIGINT (the shell's rule for `cmd &`), and schedulers, `timeout`
and container stops send SIGTERM; without this, both would lose everything since the last
periodic checkpoint.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


def _raise_interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt


@contextmanager
def sigterm_interrupts():
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread (a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
