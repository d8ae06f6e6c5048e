"""Attacks spread over the processes of a :mod:`jax.distributed` job.

Per-example PRNG keys are split from the one job key over the *whole* batch before it is shared
out, so the result equals one process running everything, example by example.

One host, two processes (what ``tests/test_distributed.py`` runs)::

    # in two shells (or as two background jobs), process_id 0 and 1:
    python -m jaxaudio.cli.distributed --coordinator localhost:12355 --processes 2 --process-id 0 ...

In a script::

    from jaxaudio import attacks
    from jaxaudio.runtime import distributed
    distributed.initialize("host0:12355", num_processes=4, process_id=rank)
    result = attacks.distributed.attack(attacks.pgd, clf.logits_fn, waves, labels,
                                        key=jax.random.key(0))   # every process gets all results

Each process may load all clips (``waves`` of the whole job, as here) or only its share:
:func:`attack_share` takes the share and the job's total size instead.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from jaxaudio.attacks.validation import example_keys
from jaxaudio.runtime.distributed import gather, share

__all__ = ["attack", "attack_share"]


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
