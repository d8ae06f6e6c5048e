"""Spreading attacks and LIME explanations over several processes or hosts with
:mod:`jax.distributed`.

Every example's attack, and every excerpt's explanation, is independent of the others, so a
job spreads over ``P`` processes without any communication inside the loop: process ``p``
takes a contiguous share of the examples (:func:`share`), runs the usual jitted, batched
attack on its own devices, and the shares are gathered at the end over JAX's own multi-host
runtime (:func:`jax.experimental.multihost_utils.process_allgather`). Per-example PRNG keys
are split from the one job key over the *whole* batch before it is shared out, so the result
equals one process running everything, example by example.

One host, two processes (what ``tests/test_distributed.py`` runs)::

    # in two shells (or as two background jobs), process_id 0 and 1:
    python -m jaxaudio.distributed --coordinator localhost:12355 --processes 2 --process-id 0 ...

In a script::

    from jaxaudio import attacks, distributed
    distributed.initialize("host0:12355", num_processes=4, process_id=rank)
    result = distributed.attack(attacks.pgd, clf.logits_fn, waves, labels,
                                key=jax.random.key(0))       # every process gets all results

Each process may load all clips (``waves`` of the whole job, as here) or only its share:
:func:`attack_share` takes the share and the job's total size instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Optional

import jax
import numpy as np

from jaxaudio.attacks.validation import example_keys

__all__ = ["initialize", "share", "gather", "attack", "attack_share", "explain", "main"]


def initialize(coordinator_address: str, *, num_processes: int, process_id: int) -> None:
    """Join a multi-process JAX job (:func:`jax.distributed.initialize`); on the CPU backend
    with gloo collectives so that CPU processes can gather results.

    ``coordinator_address``: ``host:port`` of process 0; ``num_processes`` >= 1;
    ``process_id`` in ``[0, num_processes)``.
    """
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id}")
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, ValueError):  # older or newer JAX: its default then
        pass
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)


def share(total: int, *, process_index: Optional[int] = None,
          process_count: Optional[int] = None) -> slice:
    """This process's contiguous share of ``total`` examples: ``ceil(total / P)`` each, the
    last share shorter (possibly empty)."""
    p = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    size = -(-total // count)
    return slice(min(p * size, total), min((p + 1) * size, total))


def gather(tree, total: int):
    """Concatenate every process's share of ``tree`` (leading axis) into the whole job's
    ``(total, ...)`` arrays, on every process. Shares are padded to equal size for the
    exchange (multi-host all-gather needs equal shapes) and the padding dropped."""
    from jax.experimental import multihost_utils

    count = jax.process_count()
    if count == 1:
        return jax.tree.map(np.asarray, tree)
    size = -(-total // count)

    def pad(a):
        a = np.asarray(a)
        if a.shape[0] == size:
            return a
        filler = np.zeros((size - a.shape[0],) + a.shape[1:], a.dtype)
        return np.concatenate([a, filler], axis=0)

    padded = jax.tree.map(pad, tree)
    gathered = multihost_utils.process_allgather(padded, tiled=False)  # (count, size, ...)
    return jax.tree.map(lambda a: np.asarray(a).reshape((-1,) + a.shape[2:])[:total],
                        gathered)


def attack_share(attack_fn: Callable, logits_fn, x_share, labels_share, *, key, total: int,
                 offset: int, target=None, **kwargs):
    """Run ``attack_fn`` (e.g. :func:`jaxaudio.attacks.pgd`) on this process's share of a job of
    ``total`` examples starting at example ``offset``, and gather every share.

    ``key``: the one key of the whole job (the per-example keys are split from it over
    ``total`` examples, so results equal one process); ``target``: an int, ``"random"``, None or
    this share's int array. Returns the whole job's :class:`~jaxaudio.attacks.AttackResult`
    as NumPy arrays, on every process.
    """
    n = int(np.shape(x_share)[0])
    keys = example_keys(key, total)[offset:offset + n]
    if n == 0:
        raise ValueError("this process's share is empty: use fewer processes than examples")
    result = attack_fn(logits_fn, x_share, labels_share, key=keys, target=target, **kwargs)
    return gather(result, total)


def attack(attack_fn: Callable, logits_fn, x, labels, *, key, target=None, **kwargs):
    """:func:`attack_share` when every process holds the whole job's ``x``/``labels``."""
    total = int(np.shape(x)[0])
    part = share(total)
    if not isinstance(target, (type(None), int, str)):
        target = np.asarray(target)[part]
    return attack_share(attack_fn, logits_fn, np.asarray(x)[part], np.asarray(labels)[part],
                        key=key, total=total, offset=part.start, target=target, **kwargs)


def explain(predict_fn, specs, *, key, **explain_kwargs):
    """LIME explanations (:func:`jaxaudio.explain.explain`) of ``specs (N, bins, frames)``,
    shared out over the processes; excerpt ``i`` uses ``fold_in(key, i)`` wherever it runs.
    Returns the component weights ``(N, num_outputs, num_components)`` and the surrogate
    scores ``(N, num_outputs)`` on every process."""
    from jaxaudio import explain as ex

    total = int(np.shape(specs)[0])
    part = share(total)
    weights, scores = [], []
    for i in range(part.start, part.stop):
        e = ex.explain(predict_fn, specs[i], key=jax.random.fold_in(key, i), **explain_kwargs)
        weights.append(np.asarray(e.weights))
        scores.append(np.asarray(e.score))
    return gather({"weights": np.stack(weights), "score": np.stack(scores)}, total)


def _demo_job(seed: int):
    """The job the two-process check runs: a tiny classifier and clips, PGD and LIME."""
    from jaxaudio import explain as ex, tasks
    from jaxaudio.models import init_classifier

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
    """``python -m jaxaudio.distributed``: run the small PGD + LIME job as one process of a
    multi-process job and write its (gathered) results to ``--out`` (JSON); used by the tests
    to check that two processes give what one gives."""
    from jaxaudio import attacks

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
