"""Early stopping: how much of the batched work is useful, on study 1's attack mix.

    python benchmarks/early_stopping.py --model runs/demo/foundation/instruments/model
        [--clips 48] [--slots 16] [--out benchmarks/results/early_stopping_demo.json]
    python benchmarks/early_stopping.py --width 64 --clips 32 --slots 8 --max-iterations 100 \\
        --attacks pgd --out benchmarks/results/early_stopping_paper_width.json

With early stopping every example stops at its own first success, so a batch does useful
work only in the slots whose example is still running. The attacks of study 1's presets
(PGD, C&W towards random targets, multi-scale C&W; the study's settings, up to
``--max-iterations``) run on ``--clips`` 3-s test excerpts of the synthetic instruments
through ``--slots`` slots, three ways:

* plain batches of ``--slots`` examples, each running until its slowest example stops
  (computed from the per-example iterations: every batch costs ``slots × max(steps)``);
* the refilled queue with a fixed batch (the on-device program; stepped from the host here);
* the refilled queue as the CPU runs it: the host loop halves the batch whenever at most half
  of its slots are still occupied (:func:`jaxaudio.attacks.loop.queue_shrink`).

Efficiency = useful example-steps (the steps each example needed,
:func:`jaxaudio.metrics.useful_steps`) / example-steps computed. It does not depend on
the machine's load; the seconds do (they are one run each, after a compile call).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio import attacks
from jaxaudio.attacks import evaluation
from jaxaudio.training import tasks
from jaxaudio.attacks import validation
from jaxaudio.metrics import useful_steps
from jaxaudio.studies.instrument_attacks import STUDY_PRESETS

SAMPLE_RATE = 16000


def _classifier(model, width):
    from jaxaudio.models import Classifier

    if model:
        return Classifier.load(model), str(model)
    p = tasks.preset("instruments", "demo")
    import dataclasses

    p = dataclasses.replace(p, width=width)
    return tasks.new_classifier("instruments", p, seed=0), f"untrained width-{width} classifier"


def _mix(preset: str, max_iterations: int) -> dict:
    sp = STUDY_PRESETS[preset]
    out = {}
    for name, method, kwargs, static in (
            ("pgd", "pgd", sp.pgd, {"random_start": True, "norm": "linf"}),
            ("cw_random", "cw", sp.cw, {}),
            ("mscw", "multiscale_cw", sp.mscw, {})):
        hyper = {k: v for k, v in kwargs.items() if k != "max_iterations"}
        out[name] = (method, hyper, static, min(int(kwargs["max_iterations"]), max_iterations))
    return out


def _timed(fn, *args):
    jax.block_until_ready(fn(*args)[0].adversarial)  # compile + warm up
    t0 = time.perf_counter()
    res, slot_steps = fn(*args)
    jax.block_until_ready(res.adversarial)
    return res, int(slot_steps), time.perf_counter() - t0


def measure(clf, waves, labels, *, name, method, hyper, static, max_iterations, slots) -> dict:
    targeted = name != "pgd"
    key = jax.random.key(1)
    prepared = validation.prepare_inputs(clf.logits_fn, waves, labels, key=key, need_key=True,
                                   target="random" if targeted else None)
    fn = attacks.make_attack(method, clf.logits_fn, slots=slots, loop="host",
                             targeted=targeted, quantize_16bit=True, **static)
    args = (prepared.x, prepared.labels, prepared.targets, prepared.keys,
            attacks.as_hyper(**hyper), jnp.asarray(max_iterations, jnp.int32))
    fixed, fixed_steps, fixed_s = _timed(fn._replace(shrink=None), *args)
    narrowed, narrowed_steps, narrowed_s = _timed(fn, *args)
    need = useful_steps(fixed.iterations, max_iterations)
    useful = int(need.sum())
    plain_steps = int(sum(slots * need[i:i + slots].max() for i in range(0, len(need), slots)))
    same = bool(np.array_equal(np.asarray(fixed.iterations), np.asarray(narrowed.iterations))
                and np.array_equal(np.asarray(fixed.adversarial),
                                   np.asarray(narrowed.adversarial)))
    row = {"attack": name, "settings": hyper, "max_iterations": max_iterations,
           "examples": len(need), "slots": slots, "useful_example_steps": useful,
           "success_rate": float(np.asarray(fixed.success).mean()),
           "median_iterations": float(np.median(np.asarray(fixed.iterations))),
           "plain_batches": {"example_steps": plain_steps, "efficiency": useful / plain_steps},
           "queue_fixed_batch": {"example_steps": fixed_steps,
                                 "efficiency": useful / fixed_steps, "seconds": fixed_s},
           "queue_narrowing": {"example_steps": narrowed_steps,
                               "efficiency": useful / narrowed_steps, "seconds": narrowed_s},
           "same_results": same}
    print(f"{name:10s} success {row['success_rate']:.3f}  efficiency: plain "
          f"{row['plain_batches']['efficiency']:.3f}  queue {row['queue_fixed_batch']['efficiency']:.3f}"
          f"  queue+narrowing {row['queue_narrowing']['efficiency']:.3f}  "
          f"({fixed_s:.1f} s -> {narrowed_s:.1f} s)  same results: {same}", flush=True)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="trained classifier (…/model); default "
                        "an untrained classifier of --width")
    parser.add_argument("--width", type=int, default=16, help="width of the untrained default")
    parser.add_argument("--preset", default="demo", choices=sorted(STUDY_PRESETS),
                        help="study 1 preset whose attack settings are used (default demo)")
    parser.add_argument("--attacks", nargs="+", default=["pgd", "cw_random", "mscw"],
                        choices=["pgd", "cw_random", "mscw"])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--max-iterations", type=int, default=500)
    parser.add_argument("--out", default="benchmarks/results/early_stopping_demo.json")
    args = parser.parse_args(argv)

    clf, model_name = _classifier(args.model, args.width)
    test = tasks.load_split("synth-instruments", "test", preset_name="demo", seed=0)
    excerpts = evaluation.attack_excerpts(test, clf, num_clips=args.clips, clip_seconds=3.0,
                                          seed=0)
    waves, labels = np.asarray(excerpts["waves"]), np.asarray(excerpts["labels"])
    print(f"model: {model_name}; {len(waves)} excerpts of 3 s; {args.slots} slots", flush=True)
    rows = [measure(clf, waves, labels, name=name, method=m, hyper=h, static=s,
                    max_iterations=it, slots=args.slots)
            for name, (m, h, s, it) in _mix(args.preset, args.max_iterations).items()
            if name in args.attacks]
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": model_name, "jax": jax.__version__,
                               "backend": jax.default_backend(), "rows": rows}, indent=2))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
