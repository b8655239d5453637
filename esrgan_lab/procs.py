"""Child processes that end with their parent.

``prepare-data``'s process pool and the trainer's data-loader workers are forked children.
If the parent dies without a chance to clean up (SIGKILL from the OOM killer or a
scheduler), a child is reparented to init and, left alone, idles there as an orphan.
:class:`DieWithParent` runs first in every such child (the pool's ``initializer``, the
loader's ``worker_init_fn``) and ties the child's life to the parent's:

* Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, so the kernel kills the child the moment its
  parent goes, whatever signal ended it; then one check that the parent is still the one
  that started the child (it may have died before the ``prctl``).
* Elsewhere (or if ``prctl`` is unavailable): a daemon thread that polls the parent's pid
  every :data:`POLL_SECONDS` and ends the child when it changes.

For a pool worker it also makes the child ignore SIGINT (Ctrl-C reaches the whole process
group, and the parent alone decides what an interrupt means: stop the pool, remove
temporaries) and puts back SIGTERM's default action (a forked child inherits the parent's
handlers); DataLoader workers keep the handlers torch gives them.

``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child ends; the pools and
loaders here are started from the thread that then waits on them, so that is the parent's
lifetime in practice.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

#: ``PR_SET_PDEATHSIG`` from ``<linux/prctl.h>``.
PR_SET_PDEATHSIG = 1
#: Poll interval of the fallback watchdog thread.
POLL_SECONDS = 0.5


def _set_pdeathsig(sig: int) -> bool:
    """Ask the Linux kernel to send ``sig`` to this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(1)


class DieWithParent:
    """Callable run at the start of a child process: end it when ``parent`` dies.

    Picklable (for spawn start methods) and indifferent to its call arguments, so it
    serves as a process pool ``initializer`` and as a DataLoader ``worker_init_fn``.

    Args:
        parent: The parent's pid (default: the process that builds this object).
        pool_signals: For a process-pool worker: ignore SIGINT (the parent handles
            Ctrl-C) and put back SIGTERM's default action (a forked child inherits the
            parent's Python handlers, and SIGTERM from the parent must end the worker,
            not raise in it). ``False`` for DataLoader workers, whose signal handlers
            torch installs itself (its SIGTERM handler exits quietly).
    """

    def __init__(self, parent: int | None = None, *, pool_signals: bool = True) -> None:
        self.parent = os.getpid() if parent is None else int(parent)
        self.pool_signals = pool_signals

    def __call__(self, *_: Any) -> None:
        if self.pool_signals:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if not _set_pdeathsig(signal.SIGKILL):
            threading.Thread(target=_watch, args=(self.parent,), daemon=True).start()
        if os.getppid() != self.parent:  # the parent died before the prctl took hold
            os._exit(1)
