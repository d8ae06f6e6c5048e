"""JAX's persistent compilation cache in jaxaudio's own cache folder.

A compiled attack, training step or LIME program is written to disk the first time it is
compiled and loaded by every later process that compiles the same program (same shapes,
options, JAX version and device), so a second ``jaxaudio attack``, ``make demo`` or
``make test`` skips most compilation. The command line and the test suite turn it on; in a
script, call :func:`use_compilation_cache` before the first ``jit`` call.

``JAXAUDIO_COMPILATION_CACHE`` sets the folder (default ``~/.cache/jaxaudio/xla``); an empty
value turns the cache off.
"""

from __future__ import annotations

import os
import pathlib
from typing import Optional

__all__ = ["default_folder", "use_compilation_cache"]


def default_folder() -> Optional[str]:
    """The cache folder from ``JAXAUDIO_COMPILATION_CACHE`` (``None`` = turned off)."""
    folder = os.environ.get("JAXAUDIO_COMPILATION_CACHE",
                            str(pathlib.Path.home() / ".cache" / "jaxaudio" / "xla"))
    return folder or None


def use_compilation_cache(folder: Optional[str] = None, *,
                          min_compile_seconds: float = 0.5) -> Optional[str]:
    """Keep compiled programs that took at least ``min_compile_seconds`` to compile in
    ``folder`` (default :func:`default_folder`). Returns the folder, or ``None`` when off."""
    folder = default_folder() if folder is None else folder
    if not folder:
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    return str(folder)
