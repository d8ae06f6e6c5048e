"""Attack throughput: the compiled attack loop against a bare ``value_and_grad``, early-stopping
slot refill, and Foolbox 3's ``LinfPGD`` on the same model.

    python benchmarks/attack_throughput.py [--model runs/inst/model] [--batches 1 8 32 128]
        [--out benchmarks/results/attack_throughput_cpu.json]

Three tables:

1. **Loop overhead.** PGD and C&W on 3-s clips at 16 kHz (48000 samples) through the instrument
   classifier (the demo's width-16 average-pool CNN), early stopping off, at batch 1, 8, 32, 128.
   ``examples/s`` = batch / (time of one call with ``--iterations`` steps). The loop's cost per
   iteration is measured as the slope between two iteration counts (so setup and the final
   re-evaluation drop out) and divided by the time of one bare jitted ``value_and_grad`` of the
   same loss at the same batch, timed in the same round: the overhead ratio (median of rounds).
2. **Early stopping.** PGD with early stopping on ``--queue`` examples through ``--slots`` slots: a
   plain batch (each batch of ``--slots`` waits for its slowest example) against the refilled queue
   (:func:`jaxaudio.attacks.driver.attack_queue`). Efficiency = useful example-steps (the sum of
   the steps each example needed) / (slots × loop iterations).
3. **Foolbox.** ``foolbox.attacks.LinfPGD`` through ``foolbox.JAXModel`` on the same model, eps,
   steps and batch (skipped with a message when Foolbox is not installed:
   ``pip install 'jaxaudio[bench]'``).

All times are medians over ``--repeats`` calls (rounds) after one warm-up (compile) call.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from common import CLIP_SAMPLES, SAMPLE_RATE, instrument_excerpts, median_seconds
from jaxaudio import attacks
from jaxaudio.training import tasks
from jaxaudio.metrics import useful_steps



def _machine() -> str:
    dev = jax.devices()[0]
    cores = os.cpu_count()
    if dev.platform == "cpu":
        return f"{cores}-core CPU ({platform.processor() or platform.machine()}), no GPU"
    return f"{dev.device_kind} ({dev.platform}), host {cores} cores"


def _classifier(model):
    from jaxaudio.models import Classifier

    if model:
        return Classifier.load(model), str(model)
    p = tasks.preset("instruments", "demo")
    return tasks.new_classifier("instruments", p, seed=0), "untrained demo-size classifier"


def _time_once(fn) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def _time_n(fn, n: int) -> float:
    """Mean seconds per call over ``n`` back-to-back calls (one final sync)."""
    t0 = time.perf_counter()
    for _ in range(n):
        out = fn()
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / n


def loop_overhead(clf, waves, labels, batches, *, iterations, repeats) -> list[dict]:
    """Interleaved rounds (bare, attack short, attack long) so that the load of a shared
    machine hits all three alike; the overhead ratio is the median over rounds of
    ``((t_long - t_short) / (iterations - short)) / t_bare``, where ``t_bare`` is the mean of
    ``iterations - short`` back-to-back bare calls in the same round (as many calls as the
    slope spans, dispatched the same way as the host loop's iterations)."""
    logits_fn = clf.logits_fn
    short = max(1, iterations // 4)
    rows = []
    settings = {
        "pgd": (dict(random_start=True), dict(learning_rate=1e-4, eps=2e-3)),
        "cw": (dict(targeted=True), dict(learning_rate=1e-4, clip_eps=1e-2, alpha=1.0)),
    }
    for batch in batches:
        x = jnp.asarray(waves[:batch])
        y = jnp.asarray(labels[:batch])
        targets = (y + 1) % clf.num_outputs
        keys = jax.random.split(jax.random.key(0), batch)

        # The bare baseline differentiates the attack's own objective once: PGD ascends the
        # cross-entropy of the label; C&W minimises ||x_adv - x||^2 + alpha * CE(target).
        def pgd_loss(xb):
            lg = logits_fn(xb)
            return -jnp.sum(jax.nn.log_softmax(lg)[jnp.arange(batch), y])

        def cw_loss(xb):
            lg = logits_fn(xb)
            ce = -jax.nn.log_softmax(lg)[jnp.arange(batch), targets]
            return jnp.sum(jnp.sum((xb - x) ** 2, axis=-1) + 1.0 * ce)

        row = {"batch": batch}
        bare_times = []
        for name, (config, hyper_kwargs) in settings.items():
            bare = jax.jit(jax.value_and_grad(pgd_loss if name == "pgd" else cw_loss))
            bare_call = lambda: bare(x)  # noqa: E731,B023
            jax.block_until_ready(bare_call())
            fn = attacks.make_attack(name, logits_fn, early_stop=False, **config)
            tgt = targets if name == "cw" else jnp.full((batch,), -1, jnp.int32)

            def call(steps):
                hyper = attacks.as_hyper(**hyper_kwargs)  # noqa: B023
                steps = jnp.asarray(steps, jnp.int32)
                return lambda: fn(x, y, tgt, keys, hyper, steps).adversarial  # noqa: B023

            calls = {"short": call(short), "long": call(iterations)}
            for c in calls.values():
                jax.block_until_ready(c())  # compile
            rounds = []
            for _ in range(repeats):
                t_bare = _time_n(bare_call, iterations - short)
                t_short = _time_once(calls["short"])
                t_long = _time_once(calls["long"])
                bare_times.append(t_bare)
                per_iter = (t_long - t_short) / (iterations - short)
                rounds.append((t_bare, t_short, t_long, per_iter, per_iter / t_bare))
            r = np.asarray(rounds)
            t_long = float(np.median(r[:, 2]))
            row[name] = {
                "bare_value_and_grad_s": float(np.median(r[:, 0])),
                "seconds": t_long,
                "examples_per_s": batch / t_long,
                "per_iteration_s": float(np.median(r[:, 3])),
                "overhead_ratio": float(np.median(r[:, 4])),
                "overhead_ratio_rounds": [float(v) for v in r[:, 4]],
                "total_over_bare": float(np.median(r[:, 2] / (iterations * r[:, 0]))),
            }
        row["bare_value_and_grad_s"] = float(np.median(bare_times))  # both objectives
        rows.append(row)
        print(f"batch {batch:4d}: bare {row['bare_value_and_grad_s'] * 1e3:8.1f} ms | PGD "
              f"{row['pgd']['examples_per_s']:7.2f} ex/s x{row['pgd']['overhead_ratio']:.3f} | "
              f"C&W {row['cw']['examples_per_s']:7.2f} ex/s x{row['cw']['overhead_ratio']:.3f}",
              flush=True)
    return rows


def early_stop_efficiency(clf, waves, labels, *, slots, max_iterations) -> list[dict]:
    """Plain batches of ``slots`` examples vs one refilled queue through ``slots`` slots."""
    n = len(waves)
    hyper = attacks.as_hyper(learning_rate=2e-4, eps=2e-3)
    steps_max = jnp.asarray(max_iterations, jnp.int32)
    keys = jax.random.split(jax.random.key(1), n)
    x, y = jnp.asarray(waves), jnp.asarray(labels)
    tgt = jnp.full((n,), -1, jnp.int32)
    rows = []

    plain = attacks.make_attack("pgd", clf.logits_fn, random_start=True)
    jax.block_until_ready(plain(x[:slots], y[:slots], tgt[:slots], keys[:slots], hyper,
                                steps_max))
    t0 = time.perf_counter()
    iters, loop_steps = [], 0
    for i in range(0, n, slots):
        res = plain(x[i:i + slots], y[i:i + slots], tgt[i:i + slots], keys[i:i + slots], hyper,
                    steps_max)
        need = useful_steps(res.iterations, max_iterations)
        iters.append(np.asarray(res.iterations))
        loop_steps += int(need.max())  # a plain batch runs until its slowest example is done
    t_plain = time.perf_counter() - t0
    iterations = np.concatenate(iters)
    useful = int(useful_steps(iterations, max_iterations).sum())
    rows.append({"mode": "plain batches (wait for the slowest)", "examples": n, "slots": slots,
                 "seconds": t_plain, "examples_per_s": n / t_plain, "slot_steps": slots * loop_steps,
                 "useful_example_steps": useful, "efficiency": useful / (slots * loop_steps)})

    queue = attacks.make_attack("pgd", clf.logits_fn, random_start=True, slots=slots)
    jax.block_until_ready(queue(x, y, tgt, keys, hyper, steps_max)[0].adversarial)
    t0 = time.perf_counter()
    res, slot_steps = queue(x, y, tgt, keys, hyper, steps_max)
    jax.block_until_ready(res.adversarial)
    t_queue = time.perf_counter() - t0
    same = bool(np.array_equal(np.asarray(res.iterations), iterations))
    rows.append({"mode": "refilled queue", "examples": n, "slots": slots, "seconds": t_queue,
                 "examples_per_s": n / t_queue, "slot_steps": int(slot_steps),
                 "useful_example_steps": useful,
                 "efficiency": useful / int(slot_steps),
                 "same_iterations_as_plain": same})
    for r in rows:
        print(f"{r['mode']:38s} {r['examples_per_s']:7.2f} ex/s, {r['slot_steps']:6d}"
              f" example-steps, efficiency {r['efficiency']:.3f}", flush=True)
    return rows


def foolbox_comparison(clf, waves, labels, *, batch, steps, repeats, eps=2e-3,
                       step=2e-4) -> dict:
    try:
        import foolbox as fb
    except ImportError:
        msg = "Foolbox not installed (pip install 'jaxaudio[bench]'); Foolbox row skipped"
        print(msg)
        return {"skipped": msg}
    x = jnp.asarray(waves[:batch])
    y = jnp.asarray(labels[:batch])
    model = fb.JAXModel(clf.logits_fn, bounds=(-1.0, 1.0))
    attack = fb.attacks.LinfPGD(steps=steps, abs_stepsize=step, random_start=True)
    clean_correct = np.asarray(clf.logits(x)).argmax(-1) == np.asarray(y)

    def run_fb():
        _, clipped, success = attack(model, x, y, epsilons=eps)
        return clipped, success

    t_fb = median_seconds(run_fb, repeats)
    _, fb_success = run_fb()
    fb_success = np.asarray(fb_success)

    hyper = attacks.as_hyper(learning_rate=step, eps=eps)
    max_steps = jnp.asarray(steps, jnp.int32)
    keys = jax.random.split(jax.random.key(0), batch)
    tgt = jnp.full((batch,), -1, jnp.int32)
    variants = {}
    # Which difference matters: the step rule, the random start, the 16-bit grid.
    for name, options in (
            ("pgd (signed-gradient Adam, the paper's; early stopping off)", {}),
            ("pgd step='sign' (fixed signed step, like LinfPGD)", {"step": "sign"}),
            ("pgd step='sign', no random start", {"step": "sign", "random_start": False}),
            ("pgd signed Adam, on the 16-bit grid", {"quantize_16bit": True}),
            ("pgd step='sign', on the 16-bit grid", {"step": "sign", "quantize_16bit": True})):
        kw = {"random_start": True, "early_stop": False, **options}
        fn = attacks.make_attack("pgd", clf.logits_fn, **kw)
        t = median_seconds(lambda: fn(x, y, tgt, keys, hyper, max_steps).adversarial, repeats)
        ok = np.asarray(fn(x, y, tgt, keys, hyper, max_steps).success)
        variants[name] = {"options": kw, "seconds": t, "examples_per_s": batch / t,
                          "success_rate": float(ok.mean()),
                          "success_rate_on_clean_correct": float(ok[clean_correct].mean())}
        print(f"{name:60s} success {ok.mean():.3f}  {batch / t:.2f} ex/s", flush=True)
    first = next(iter(variants.values()))
    out = {
        "batch": batch, "steps": steps, "eps": eps, "step_size": step,
        "foolbox": {"version": fb.__version__, "attack": "LinfPGD (sign-gradient steps)",
                    "seconds": t_fb, "examples_per_s": batch / t_fb,
                    "success_rate": float(fb_success.mean()),
                    "success_rate_on_clean_correct": float(fb_success[clean_correct].mean())},
        "jaxaudio": dict(first, attack=next(iter(variants))),
        "jaxaudio_variants": variants,
    }
    print(f"Foolbox LinfPGD: {out['foolbox']['examples_per_s']:.2f} ex/s, success "
          f"{out['foolbox']['success_rate']:.3f} | jaxaudio pgd: "
          f"{out['jaxaudio']['examples_per_s']:.2f} ex/s, success "
          f"{out['jaxaudio']['success_rate']:.3f}", flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="trained classifier (…/model)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--iterations", type=int, default=12,
                        help="fixed steps per call in the overhead table")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--queue", type=int, default=128, help="examples in the early-stop table")
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--max-iterations", type=int, default=100,
                        help="PGD step limit in the early-stop table")
    parser.add_argument("--foolbox-batch", type=int, default=32)
    parser.add_argument("--foolbox-steps", type=int, default=20)
    parser.add_argument("--foolbox-eps", type=float, default=2e-3)
    parser.add_argument("--foolbox-step", type=float, default=2e-4,
                        help="LinfPGD's absolute step = jaxaudio's learning rate")
    parser.add_argument("--parts", nargs="+", default=["overhead", "early_stopping", "foolbox"],
                        choices=["overhead", "early_stopping", "foolbox"])
    parser.add_argument("--out", default="benchmarks/results/attack_throughput_cpu.json")
    args = parser.parse_args(argv)

    clf, model_name = _classifier(args.model)
    waves, labels = instrument_excerpts(max(max(args.batches), args.queue, args.foolbox_batch))
    machine = _machine()
    print(f"machine: {machine}; model: {model_name}; clips {CLIP_SAMPLES} samples", flush=True)
    results = {"machine": machine, "jax": jax.__version__, "backend": jax.default_backend(),
               "model": model_name, "clip_samples": CLIP_SAMPLES, "sample_rate": SAMPLE_RATE,
               "iterations": args.iterations, "repeats": args.repeats}
    if "overhead" in args.parts:
        results["loop_overhead"] = loop_overhead(clf, waves, labels, args.batches,
                                                 iterations=args.iterations,
                                                 repeats=args.repeats)
    if "early_stopping" in args.parts:
        results["early_stopping"] = early_stop_efficiency(
            clf, waves[:args.queue], labels[:args.queue], slots=args.slots,
            max_iterations=args.max_iterations)
    if "foolbox" in args.parts:
        results["foolbox"] = foolbox_comparison(clf, waves, labels, batch=args.foolbox_batch,
                                                steps=args.foolbox_steps,
                                                repeats=args.repeats, eps=args.foolbox_eps,
                                                step=args.foolbox_step)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))

    print("\n| batch | bare v&g (ms) | PGD ex/s | PGD overhead | C&W ex/s | C&W overhead |")
    print("|---|---|---|---|---|---|")
    for r in results.get("loop_overhead", []):
        print(f"| {r['batch']} | {r['bare_value_and_grad_s'] * 1e3:.1f} | "
              f"{r['pgd']['examples_per_s']:.2f} | {r['pgd']['overhead_ratio']:.3f}x | "
              f"{r['cw']['examples_per_s']:.2f} | {r['cw']['overhead_ratio']:.3f}x |")
    print(f"\nwritten {out} ({machine})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
