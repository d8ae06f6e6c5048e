"""How robust an attack's adversaries are: channel survival, the cost of EOT, ensemble defence.

The analysis behind study 1's robustness option (docs/studies.md §1, "Channels, robust
adversaries and an ensemble defence"), on *runs*: the mappings an attack run on a clip set
leaves (``clip_mask``, ``labels``, ``success``, ``iterations``, ``snr_db``, ``target``,
``adversarial_prediction`` and ``adversarial_pcm``, the int16 adversaries) and *clip sets*
(``waves`` ``(batch, n)`` float in [-1, 1], ``labels``, ``clean_prediction`` and ``rate``).

* :func:`run_survival`: the share of a run's successful adversaries still adversarial after
  each channel of :mod:`jaxaudio.dsp.channels`.
* :func:`eot_cost`: a plain run against its EOT-robust counterpart (success, SNR, iterations).
* :func:`defence_accuracies`: a (mean-logit ensemble) classifier's accuracy on clean clips, on
  transferred adversaries and under white-box attacks on itself.
* :func:`source_summary`: the attacked classifier's own accuracies on the same clips.
* :func:`eot_run`, :func:`transfer_runs`, :func:`ensemble_defence`: the attack runs behind
  them (:func:`jaxaudio.attacks.evaluation.run_on_set`).
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence

import jax
import numpy as np

from jaxaudio import metrics
from jaxaudio.attacks import eot, evaluation, registry
from jaxaudio.attacks.sharding import sharded
from jaxaudio.data.audio import pcm16_to_float
from jaxaudio.dsp import channels as channel_lib
from jaxaudio.training import ensemble

__all__ = ["adversarial_waves", "run_survival", "eot_cost", "COST_KEYS", "defence_accuracies",
           "source_summary", "eot_run", "pgd_run", "transfer_runs", "ensemble_defence"]

#: The figures :func:`eot_cost` compares (``metrics.attack_summary`` keys).
COST_KEYS = ("success_rate", "snr_db_mean", "snr_db_median", "iterations_median")


def adversarial_waves(run: Mapping) -> np.ndarray:
    """A run's adversaries ``(batch, n)`` float32 in [-1, 1], from its ``adversarial_pcm``."""
    return pcm16_to_float(run["adversarial_pcm"])


def run_survival(logits_fn: Callable, clips: Mapping, run: Mapping, *,
                 channels: Sequence[str] = channel_lib.DEFAULT_CHANNELS,
                 seed: int = 0) -> dict:
    """Survival per channel of ``run``'s successful adversaries on clips the model got right.

    Parameters
    ----------
    logits_fn : callable
        ``(batch, n) -> (batch, num_classes)``, the attacked classifier.
    clips : mapping
        The clip set: ``waves`` ``(M, n)`` float, ``clean_prediction`` ``(M,)`` int and
        ``rate`` (Hz).
    run : mapping
        A run on those clips with ``clip_mask`` ``(M,)`` bool (the ``B`` clips it attacked),
        ``labels``, ``success`` and ``target`` ``(B,)`` and ``adversarial_pcm`` ``(B, n)``.
    channels : sequence of str
        Names of :data:`jaxaudio.dsp.channels.CHANNELS`.
    seed : int
        Seed of the random channels.

    Returns
    -------
    dict
        :func:`jaxaudio.dsp.channels.survival`'s table: only adversaries that succeeded on a
        clip whose clean prediction was right count as successful.
    """
    mask = np.asarray(run["clip_mask"], bool)
    clean = np.asarray(clips["waves"])[mask]
    clean_pred = np.asarray(clips["clean_prediction"])[mask]
    labels = np.asarray(run["labels"])
    success = np.asarray(run["success"], bool) & (clean_pred == labels)
    return channel_lib.survival(logits_fn, clean, adversarial_waves(run), labels,
                                rate=int(clips["rate"]), targets=np.asarray(run["target"]),
                                success=success, channels=list(channels), seed=seed)


def _summary(run: Mapping, max_iterations: int) -> dict:
    return metrics.attack_summary([run], targeted=bool(np.any(run["target"] >= 0)),
                                  max_iterations=max_iterations)


def eot_cost(plain: Mapping, robust: Mapping, *, max_iterations: int) -> dict:
    """What robustness costs: the plain run's and the robust run's figures side by side.

    Parameters
    ----------
    plain, robust : mapping
        Two runs of one attack with the same settings, without and with expectation over
        transformation (targeted when any ``target`` is ``>= 0``).
    max_iterations : int
        The attack's iteration budget (for the iteration figures).

    Returns
    -------
    dict
        ``plain_<k>`` and ``robust_<k>`` for every ``k`` of :data:`COST_KEYS` (``None`` where
        the summary has none), and ``snr_cost_db`` (plain minus robust mean SNR, dB) when both
        mean SNRs exist.
    """
    p, r = _summary(plain, max_iterations), _summary(robust, max_iterations)
    out = {f"plain_{k}": p.get(k) for k in COST_KEYS}
    out.update({f"robust_{k}": r.get(k) for k in COST_KEYS})
    if p.get("snr_db_mean") is not None and r.get("snr_db_mean") is not None:
        out["snr_cost_db"] = p["snr_db_mean"] - r["snr_db_mean"]
    return out


def defence_accuracies(logits_fn: Callable, waves, labels, *, transferred: Mapping,
                       whitebox: Mapping, whitebox_pgd: Mapping, max_iterations: int) -> dict:
    """A defended classifier's accuracies on clean, transferred and white-box adversaries.

    Parameters
    ----------
    logits_fn : callable
        ``(batch, n) -> (batch, num_classes)``, e.g.
        :func:`jaxaudio.training.ensemble.ensemble_logits_fn`.
    waves : np.ndarray [shape=(batch, n)]
        The clean clips; ``labels`` ``(batch,)`` their classes.
    transferred : mapping
        Name -> a run crafted on another network over the same clips (with
        ``adversarial_pcm``); gives ``transferred_<name>_accuracy``.
    whitebox : mapping
        Name -> a run of an attack on ``logits_fn`` itself; gives ``whitebox_<name>_accuracy``
        (share of its ``adversarial_prediction`` equal to ``labels``).
    whitebox_pgd : mapping
        The white-box PGD run, summarised as ``whitebox_pgd_snr_db_mean`` (dB) and
        ``whitebox_pgd_iterations_median``.
    max_iterations : int
        PGD's iteration budget.

    Returns
    -------
    dict
        ``clean_accuracy``, ``transferred_*``, ``whitebox_*`` (accuracies in [0, 1]).
    """
    labels = np.asarray(labels)

    def accuracy(x):
        return float(np.mean(ensemble.predict(logits_fn, x) == labels))

    out = {"clean_accuracy": accuracy(np.asarray(waves))}
    out.update({f"transferred_{name}_accuracy": accuracy(adversarial_waves(run))
                for name, run in transferred.items()})
    out.update({f"whitebox_{name}_accuracy": float(np.mean(run["adversarial_prediction"] ==
                                                            labels))
                for name, run in whitebox.items()})
    summary = metrics.attack_summary([whitebox_pgd], targeted=False,
                                     max_iterations=max_iterations)
    out["whitebox_pgd_snr_db_mean"] = summary["snr_db_mean"]
    out["whitebox_pgd_iterations_median"] = summary.get("iterations_median")
    return out


def source_summary(clips: Mapping, runs: Mapping) -> dict:
    """The attacked classifier's clean accuracy on ``clips`` and its accuracy under each run.

    Parameters
    ----------
    clips : mapping
        The clip set (``clean_prediction``, ``labels`` ``(M,)``).
    runs : mapping
        Name -> a run on the clips (``adversarial_prediction``, ``labels``).

    Returns
    -------
    dict
        ``clean_accuracy`` and ``<name>_accuracy`` per run, in [0, 1].
    """
    out = {"clean_accuracy": float(np.mean(np.asarray(clips["clean_prediction"]) ==
                                           np.asarray(clips["labels"])))}
    out.update({f"{name}_accuracy": float(np.mean(run["adversarial_prediction"] ==
                                                   run["labels"]))
                for name, run in runs.items()})
    return out


def _extra(key: Optional[int], progress: Optional[str]) -> dict:
    return ({} if key is None else {"key": jax.random.key(key)}) | (
        {"progress": progress} if progress else {})


def eot_run(logits_fn: Callable, waves, labels, *, attack: str, kwargs: Mapping, rate: int,
            transforms: Sequence[str] = eot.DIFFERENTIABLE, draws: int = 1, seed: int = 0,
            key: Optional[int] = None, progress: Optional[str] = None) -> dict:
    """A run (with ``adversarial_pcm``) of ``attack`` made robust by expectation over
    transformation (:func:`jaxaudio.attacks.eot.robust`), sharded over the devices.

    Parameters
    ----------
    logits_fn : callable
        ``(batch, n) -> (batch, num_classes)``.
    waves : np.ndarray [shape=(batch, n)]
        The clips (16-bit grid); ``labels`` ``(batch,)`` their classes.
    attack : str
        A registered attack name (:mod:`jaxaudio.attacks.registry`); a ``_random`` suffix (the
        studies' random-target variant) is dropped.
    kwargs : mapping
        The attack's keyword arguments.
    rate : int
        Sample rate (Hz) of the clips.
    transforms, draws, seed
        The EOT transformations, draws per step and seed of the draws.
    key : int, optional
        PRNG seed of the attack (None: deterministic).
    progress : str, optional
        Progress bar label (None: no bar).
    """
    fn = eot.robust(sharded(registry.get(attack.removesuffix("_random")).function),
                    transforms=transforms, draws=draws, rate=int(rate), seed=seed)
    return evaluation.run_on_set(fn, logits_fn, np.asarray(waves), np.asarray(labels),
                                 keep_adversarial=True, **kwargs, **_extra(key, progress))


def pgd_run(logits_fn: Callable, waves, labels, *, kwargs: Mapping, key: int,
            keep_adversarial: bool, progress: Optional[str] = None) -> dict:
    """A run of PGD (``kwargs``, PRNG seed ``key``) on ``logits_fn``, sharded over the
    devices (:func:`jaxaudio.attacks.evaluation.run_on_set`)."""
    return evaluation.run_on_set(sharded(registry.get("pgd").function), logits_fn, waves,
                                 labels, keep_adversarial=keep_adversarial, **kwargs,
                                 **_extra(key, progress))


def transfer_runs(member_fns: Sequence[Callable], source_fn: Callable, source_run: Mapping,
                  waves, labels, *, pgd_kwargs: Mapping, key: int,
                  progress: bool = False) -> dict:
    """PGD on every member (PRNG seed ``key + k`` for member ``k``) and the transfer between
    the members and a source network whose PGD run ``source_run`` is given.

    Returns
    -------
    dict
        :func:`jaxaudio.training.ensemble.transfer_table` of the networks ``member 0 ..
        member K-1, source`` (``member_pgd_success``: each member's own PGD success rate).
    """
    waves, labels = np.asarray(waves), np.asarray(labels)
    runs = [pgd_run(fn, waves, labels, kwargs=pgd_kwargs, key=key + i, keep_adversarial=True,
                    progress=progress and f"pgd on member {i}")
            for i, fn in enumerate(member_fns)] + [source_run]
    return ensemble.transfer_table(list(member_fns) + [source_fn],
                                   [adversarial_waves(r) for r in runs],
                                   [r["success"] for r in runs], waves, labels,
                                   num_members=len(member_fns), attack="pgd")


def ensemble_defence(member_fns: Sequence[Callable], waves, labels, *, fgsm_source: Mapping,
                     pgd_source: Mapping, fgsm_eps: float, pgd_kwargs: Mapping, key: int,
                     progress: Optional[str] = None) -> dict:
    """The mean-logit ensemble of ``member_fns`` under transferred and white-box attacks.

    ``fgsm_source`` / ``pgd_source``: FGSM and PGD runs (with ``adversarial_pcm``) crafted on
    another network over the same clips; the white-box attacks are FGSM at ``fgsm_eps`` and
    PGD with ``pgd_kwargs`` (PRNG seed ``key``) on the ensemble itself. Returns
    :func:`defence_accuracies` (``transferred_fgsm/pgd_accuracy``,
    ``whitebox_fgsm/pgd_accuracy``, ...).
    """
    fn = ensemble.ensemble_logits_fn(member_fns)
    waves, labels = np.asarray(waves), np.asarray(labels)
    fgsm = evaluation.run_on_set(registry.get("fgsm").function, fn, waves, labels,
                                 keep_adversarial=False, eps=fgsm_eps)
    pgd = pgd_run(fn, waves, labels, kwargs=pgd_kwargs, key=key, keep_adversarial=False,
                  progress=progress)
    return defence_accuracies(fn, waves, labels, transferred={"fgsm": fgsm_source,
                                                               "pgd": pgd_source},
                              whitebox={"fgsm": fgsm, "pgd": pgd}, whitebox_pgd=pgd,
                              max_iterations=pgd_kwargs["max_iterations"])
