"""Attack summaries: success rates, SNR statistics and loop steps of runs of an attack."""

from __future__ import annotations

import numpy as np

__all__ = ['finite_stats', 'attack_summary', 'useful_steps']


def finite_stats(values) -> dict:
    """``{"mean", "std", "median"}`` of the finite values (all ``None`` when there are none)."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": None, "std": None, "median": None}
    return {"mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v))}


def attack_summary(runs, *, targeted: bool, max_iterations: int) -> dict:
    """Figures of merit of one attack over its seeds' runs.

    Parameters
    ----------
    runs : sequence of mappings, one per seed, each with arrays [shape=(n,)]
        ``success`` (bool), ``iterations`` (first successful step), ``snr_db``, ``labels``,
        ``original_prediction``, ``adversarial_prediction``, and ``seconds`` (scalar).
    targeted : bool
        Whether success means hitting a target (then ``target_hit_rate`` is added).
    max_iterations : int >= 1
        The attack's step budget (for ``steps_run_mean``, the steps early stopping ran).

    Returns
    -------
    dict
        ``success_rate`` / ``accuracy_after`` (mean and ``_std`` over seeds),
        ``success_rate_on_clean_correct`` (over clips the model got right before the attack),
        ``success_at_0_iterations_rate`` (successes that needed no step), SNR and iterations
        statistics over the successful adversaries of all seeds, sizes and timing.
    """

    if not runs:
        raise ValueError("runs is empty: need at least one attack run")
    cat = lambda f: np.concatenate([np.asarray(f(r)) for r in runs])  # noqa: E731
    succ = [float(np.mean(r["success"])) for r in runs]
    acc = [float(np.mean(r["adversarial_prediction"] == r["labels"])) for r in runs]
    its = cat(lambda r: r["iterations"][r["success"]])
    per_seed_snr = [s for s in (finite_stats(r["snr_db"][r["success"]])["mean"] for r in runs)
                    if s is not None]
    clean_correct = cat(lambda r: r["original_prediction"] == r["labels"])
    success_all = cat(lambda r: r["success"])
    snr = finite_stats(cat(lambda r: r["snr_db"][r["success"]]))
    seconds = float(sum(float(r["seconds"]) for r in runs))
    entry = {
        "success_rate": float(np.mean(succ)), "success_rate_std": float(np.std(succ)),
        "success_rate_on_clean_correct": (float(success_all[clean_correct].mean())
                                          if clean_correct.any() else None),
        "accuracy_after": float(np.mean(acc)), "accuracy_after_std": float(np.std(acc)),
        "snr_db_mean": snr["mean"], "snr_db_std": snr["std"], "snr_db_median": snr["median"],
        "snr_db_mean_std_over_seeds": float(np.std(per_seed_snr)) if per_seed_snr else None,
        "iterations_mean": float(its.mean()) if its.size else None,
        "iterations_median": float(np.median(its)) if its.size else None,
        "steps_run_mean": float(cat(lambda r: useful_steps(r["iterations"],
                                                                max_iterations)).mean()),
        "success_at_0_iterations_rate": float(np.mean(success_all
                                                      & (cat(lambda r: r["iterations"]) == 0))),
        "n": int(len(runs[0]["labels"])), "targeted": bool(targeted), "seeds": len(runs),
        "seconds": seconds,
        "examples_per_second": float(sum(len(r["labels"]) for r in runs) / max(seconds, 1e-9)),
    }
    if targeted:
        entry["target_hit_rate"] = entry["success_rate"]
    return entry


def useful_steps(iterations, max_iterations: int) -> np.ndarray:
    """Loop steps each example needed with early stopping: ``min(iterations + 1, max)``.

    ``iterations`` is :attr:`jaxaudio.attacks.AttackResult.iterations` (first success step,
    ``max_iterations`` when none was found); an example found at step ``k`` was evaluated
    ``k + 1`` times.
    """
    return np.minimum(np.asarray(iterations, np.int64) + 1, int(max_iterations))
