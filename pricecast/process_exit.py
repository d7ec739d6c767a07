"""Skip the garbage collection the interpreter runs as a process exits.

At exit CPython clears every module and collects what is left; with pandas, pyarrow and pydantic
loaded that took about 100 ms per process here, spent freeing memory the process is about to
hand back whole. A pipeline task is a process per stage (10 per ``pricecast run``), so that was
about a second of every run. :func:`skip_final_collection` registers ``gc.freeze`` to run at
exit, which puts every object out of that last collection's reach.

Nothing is lost: files are closed by the code that writes them (``with``), ``logging.shutdown``
(registered when logging is first imported, so run after this) flushes and closes the log
handlers, ``weakref.finalize`` and ``atexit`` callbacks still run, and the operating system takes
back the memory and descriptors. What no longer runs is ``__del__`` of objects only a reference
cycle keeps alive, which the process must not rely on anyway.
"""

from __future__ import annotations

import atexit
import gc

_registered = False


def skip_final_collection() -> None:
    """Make this process skip its final garbage collection (idempotent)."""
    global _registered
    if not _registered:
        atexit.register(gc.freeze)
        _registered = True


__all__ = ["skip_final_collection"]
