import os

# Tests run on the CPU with deterministic, single-threaded-ish XLA; keep compile cache warm.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Compiled programs persist between test runs (and are shared with the command line): a second
# `make test` loads them instead of compiling again. JAXAUDIO_COMPILATION_CACHE="" turns it off.
from jaxaudio.xla_cache import use_compilation_cache  # noqa: E402

use_compilation_cache()
