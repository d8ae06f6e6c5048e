"""Training: the optax loop with Orbax checkpoints, many models at once, losses, bootstrap ensembles, baselines and the named tasks (data + model + preset)."""
