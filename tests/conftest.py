import os

# Tests run on the CPU with deterministic, single-threaded-ish XLA; keep compile cache warm.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
