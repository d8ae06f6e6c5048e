"""``python -m jaxaudio.cli.distributed``: a small PGD + LIME job as one process of a
multi-process :mod:`jax.distributed` job (the tests check that two processes give what one
gives)."""

from __future__ import annotations

import argparse
import json
import sys

import jax
import numpy as np

from jaxaudio import attacks
from jaxaudio import explain as ex
from jaxaudio.attacks.distributed import attack
from jaxaudio.explain.distributed import explain
from jaxaudio.models import init_classifier
from jaxaudio.runtime.distributed import initialize, share
from jaxaudio.training import tasks


def _demo_job(seed: int):
    """The job the two-process check runs: a tiny classifier and clips, PGD and LIME."""

    p = tasks.preset("instruments", "smoke")
    clf = init_classifier(model_name="avgpool_cnn",
                          model_kwargs={"num_classes": 3, "width": 4},
                          frontend=tasks.frontend_for("instruments"),
                          label_names=("a", "b", "c"), task="multiclass",
                          excerpt_frames=p.excerpt_frames, key=jax.random.key(seed))
    rng = np.random.default_rng(seed)
    waves = (0.1 * rng.standard_normal((5, 4096))).astype(np.float32)
    labels = rng.integers(0, 3, 5).astype(np.int32)
    predict = ex.softmax_of(clf.feature_logits_fn)
    specs = np.asarray(clf.features(waves))
    return clf, waves, labels, predict, specs


def main(argv=None) -> int:
    """``python -m jaxaudio.runtime.distributed``: run the small PGD + LIME job as one process of a
    multi-process job and write its (gathered) results to ``--out`` (JSON); used by the tests
    to check that two processes give what one gives."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--coordinator", default=None, help="host:port of process 0 "
                        "(omit for a single process)")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="JSON file for this process's results")
    args = parser.parse_args(argv)
    if args.coordinator:
        initialize(args.coordinator, num_processes=args.processes, process_id=args.process_id)
    clf, waves, labels, predict, specs = _demo_job(args.seed)
    res = attack(attacks.pgd, clf.logits_fn, waves, labels, key=jax.random.key(args.seed),
                 eps=2e-3, learning_rate=2e-4, max_iterations=6)
    lime = explain(predict, specs, key=jax.random.key(args.seed + 1), num_samples=64)
    out = {"process_index": jax.process_index(), "process_count": jax.process_count(),
           "share": [share(len(waves)).start, share(len(waves)).stop],
           "adversarial": np.asarray(res.adversarial).tolist(),
           "iterations": np.asarray(res.iterations).tolist(),
           "success": np.asarray(res.success).tolist(),
           "lime_weights": np.asarray(lime["weights"]).tolist()}
    with open(args.out, "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
