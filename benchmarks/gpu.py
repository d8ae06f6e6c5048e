"""One benchmark for an accelerator (also runs on the CPU at small sizes): attacks, the whole
attack job, LIME, and (optionally) the studies, with an optional mixed-precision comparison.

    python benchmarks/gpu.py                      # sizes by backend: GPU/TPU full, CPU small
    python benchmarks/gpu.py --size small         # CPU-sized run anywhere
    python benchmarks/gpu.py --model runs/demo/foundation/instruments/model --mixed-precision
    python benchmarks/gpu.py --studies paper      # also time the three studies at paper sizes

Parts (one JSON out, ``--out``, with the device named):

* ``attacks``: FGSM, PGD, C&W and multi-scale C&W with study 1's paper settings on 3-s clips at
  16 kHz through the instrument classifier (``--model``, else an untrained paper-width one),
  early stopping off, ``--iterations`` steps, at each batch of ``--batches``: example-iterations
  per second (median over ``--repeats`` calls after a compile call) and what that makes of
  examples per second at 500 iterations.
* ``whole_job``: ``--job-clips`` clips (799 = the instrument test split of the paper) x the
  four attacks, up to 500 iterations with early stopping through a refilled queue of
  ``--job-slots`` slots: seconds, and seconds per clip.
* ``lime``: ``--lime-excerpts`` LIME explanations of ``--lime-samples`` perturbations each of
  the singing-voice detector (untrained paper-width unless ``--voice-model``): seconds per
  explanation and the extrapolation to 1000 excerpts x 8192 samples.
* ``mixed_precision`` (``--mixed-precision``): PGD and C&W with the CNN in bfloat16 (front-end,
  perturbation and optimiser in float32) against float32 on the same clips: success, mean SNR,
  example-iterations per second.
* ``studies`` (``--studies PRESET``): ``jaxaudio attack|noise|audit --preset PRESET`` run as
  subprocesses, wall-clock seconds each (each also trains its classifier).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from common import CLIP_SAMPLES, SAMPLE_RATE, instrument_excerpts, median_seconds
from jaxaudio import attacks
from jaxaudio.training import tasks
from jaxaudio.attacks import validation
from jaxaudio.studies.instrument_attacks import STUDY_PRESETS


#: Sizes per ``--size``: full on accelerators, small enough for a 2-core CPU in minutes.
SIZES = {
    "full": {"batches": [1, 32, 128, 512], "iterations": 20, "job_clips": 799, "job_slots": 256,
             "lime_excerpts": 20, "lime_samples": 8192},
    "small": {"batches": [1, 8], "iterations": 4, "job_clips": 8, "job_slots": 4,
              "lime_excerpts": 2, "lime_samples": 512},
}

#: name -> (factory name, static options, hyperparameter keys of study 1's preset)
ATTACKS = {"fgsm": ("fgsm", {}, None), "pgd": ("pgd", {"random_start": True}, "pgd"),
           "cw": ("cw", {}, "cw"), "mscw": ("multiscale_cw", {}, "mscw")}


def machine() -> dict:
    dev = jax.devices()[0]
    info = {"backend": jax.default_backend(), "device_kind": dev.device_kind,
            "num_devices": jax.device_count(), "host_cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(), "jax": jax.__version__}
    if dev.platform == "cpu":
        try:
            with open("/proc/cpuinfo") as f:
                names = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
            info["device_kind"] = names[0] if names else info["device_kind"]
        except OSError:
            pass
    return info


def classifier(model, task: str):
    from jaxaudio.models import Classifier

    if model:
        return Classifier.load(model), str(model)
    p = tasks.preset(task, "paper")
    return tasks.new_classifier(task, p, seed=0), f"untrained paper-width {task} model"


def bfloat16_logits_fn(clf):
    """``waves -> logits`` with the front-end in float32 and the CNN in bfloat16 (weights and
    activations), logits back in float32: the mixed-precision variant of ``clf.logits_fn``."""
    from jaxaudio.dsp import frontend as fe

    variables = jax.tree.map(lambda a: a.astype(jnp.bfloat16)
                             if jnp.issubdtype(a.dtype, jnp.floating) else a, clf.variables)

    def logits_fn(waves):
        x = fe.standardize(clf.features(waves), clf.mean, clf.std).astype(jnp.bfloat16)
        return clf.module.apply(variables, x, train=False).astype(jnp.float32)

    return logits_fn


def _hyper(name: str) -> dict:
    sp = STUDY_PRESETS["paper"]
    key = ATTACKS[name][2]
    if key is None:
        return {"eps": sp.fgsm_eps}
    return {k: v for k, v in getattr(sp, key).items() if k != "max_iterations"}


def _args(logits_fn, x, y, name, iterations, key=0):
    targeted = name in ("cw", "mscw")
    prepared = validation.prepare_inputs(logits_fn, x, y, key=jax.random.key(key), need_key=True,
                                   target="random" if targeted else None)
    steps = 1 if name == "fgsm" else iterations
    return targeted, (prepared.x, prepared.labels, prepared.targets, prepared.keys,
                      attacks.as_hyper(**_hyper(name)), jnp.asarray(steps, jnp.int32))


def attack_rates(logits_fn, waves, labels, *, batches, iterations, repeats) -> list[dict]:
    rows = []
    for batch in batches:
        x, y = waves[:batch], labels[:batch]
        for name, (method, static, _) in ATTACKS.items():
            targeted, args = _args(logits_fn, x, y, name, iterations)
            fn = attacks.make_attack(method, logits_fn, targeted=targeted, early_stop=False,
                                     quantize_16bit=True, **static)
            seconds = median_seconds(lambda: fn(*args).adversarial, repeats)
            steps = int(args[-1])
            rate = batch * steps / seconds
            rows.append({"attack": name, "batch": batch, "iterations": steps,
                         "seconds": seconds, "example_iterations_per_s": rate,
                         "examples_per_s_at_500_iterations": rate / (1 if name == "fgsm" else 500)})
            print(f"{name:5s} batch {batch:4d}: {rate:9.1f} example-iterations/s", flush=True)
    return rows


def whole_job(logits_fn, waves, labels, *, slots) -> dict:
    out, total = {}, 0.0
    for name, (method, static, _) in ATTACKS.items():
        targeted, args = _args(logits_fn, waves, labels, name, 500)
        kwargs = dict(targeted=targeted, quantize_16bit=True, **static)
        if name != "fgsm":
            kwargs["slots"] = min(slots, len(waves))
        fn = attacks.make_attack(method, logits_fn, **kwargs)
        t0 = time.perf_counter()
        res = fn(*args)
        res = res[0] if "slots" in kwargs else res  # the queue returns (result, slot_steps)
        jax.block_until_ready(res.adversarial)
        seconds = time.perf_counter() - t0  # includes compilation: it is part of the job
        total += seconds
        out[name] = {"seconds": seconds, "success_rate": float(np.asarray(res.success).mean()),
                     "median_iterations": float(np.median(np.asarray(res.iterations)))}
        print(f"job {name:5s}: {seconds:8.1f} s, success {out[name]['success_rate']:.3f}",
              flush=True)
    return {"clips": len(waves), "slots": slots, "attacks": out, "seconds": total,
            "seconds_per_clip": total / len(waves)}


def lime_rate(voice_model, *, excerpts, samples) -> dict:
    from jaxaudio import explain as ex

    clf, name = classifier(voice_model, "voice")
    predict = ex.binary_to_two_class(clf.feature_logits_fn, from_logits=True, threshold=0.51)
    rng = np.random.default_rng(0)
    waves = rng.standard_normal((excerpts, clf.excerpt_samples)).astype(np.float32) * 0.1
    specs = np.asarray(clf.features(jnp.asarray(waves)))
    ex.explain(predict, specs[0], key=jax.random.key(0), num_samples=samples,
               keep_predictions=False)  # compile
    t0 = time.perf_counter()
    for i, spec in enumerate(specs):
        ex.explain(predict, spec, key=jax.random.key(i), num_samples=samples,
                   keep_predictions=False)
    per = (time.perf_counter() - t0) / excerpts
    return {"model": name, "excerpts": excerpts, "samples": samples,
            "seconds_per_explanation": per,
            "extrapolated_1000_excerpts_x_8192_samples_s": per * 1000 * 8192 / samples}


def mixed_precision(clf, waves, labels, *, iterations, repeats) -> dict:
    out = {}
    for precision, fn_ in (("float32", clf.logits_fn), ("bfloat16", bfloat16_logits_fn(clf))):
        for name in ("pgd", "cw"):
            method, static, _ = ATTACKS[name]
            targeted, args = _args(fn_, waves, labels, name, iterations)
            fn = attacks.make_attack(method, fn_, targeted=targeted, quantize_16bit=True,
                                     early_stop=False, **static)
            seconds = median_seconds(lambda: fn(*args).adversarial, repeats)
            res = fn(*args)
            snr = np.asarray(res.snr_db)
            ok = np.asarray(res.success)
            # Success as the float32 model judges the adversarial (the deployed model).
            judged = np.asarray(clf.logits(res.adversarial)).argmax(-1)
            goal = np.asarray(args[2]) if targeted else np.asarray(args[1])
            ok32 = judged == goal if targeted else judged != goal
            out[f"{name}_{precision}"] = {
                "success_rate": float(ok.mean()), "success_rate_judged_in_float32":
                float(ok32.mean()), "mean_snr_db": float(snr[np.isfinite(snr)].mean())
                if np.isfinite(snr).any() else None,
                "example_iterations_per_s": len(waves) * int(args[-1]) / seconds}
            print(f"{name} {precision}: {out[f'{name}_{precision}']}", flush=True)
    return out


def studies(preset: str, folder: pathlib.Path) -> dict:
    out = {}
    for command in ("attack", "noise", "audit"):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "jaxaudio", command, "--preset", preset,
                               "--out", str(folder / command), "--no-progress"],
                              capture_output=True, text=True)
        out[command] = {"seconds": time.perf_counter() - t0, "returncode": proc.returncode,
                        "tail": proc.stdout[-400:] + proc.stderr[-400:]}
        print(f"study {command} --preset {preset}: {out[command]['seconds']:.0f} s "
              f"(rc {proc.returncode})", flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default=None,
                        help="default: full on GPU/TPU, small on CPU")
    parser.add_argument("--model", default=None, help="instrument classifier (…/model)")
    parser.add_argument("--voice-model", default=None, help="singing voice detector (…/model)")
    parser.add_argument("--batches", type=int, nargs="+", default=None)
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--job-clips", type=int, default=None)
    parser.add_argument("--job-slots", type=int, default=None)
    parser.add_argument("--lime-excerpts", type=int, default=None)
    parser.add_argument("--lime-samples", type=int, default=None)
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["attacks", "whole_job", "lime"], help="parts to leave out")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--studies", default=None, choices=["smoke", "demo", "paper"],
                        help="also time the three studies at this preset")
    parser.add_argument("--out", default=None,
                        help="JSON path (default benchmarks/results/gpu_<backend>.json)")
    args = parser.parse_args(argv)

    size = SIZES[args.size or ("small" if jax.default_backend() == "cpu" else "full")]
    pick = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in size.items()}
    info = machine()
    print(f"device: {info['device_kind']} ({info['backend']}), jax {info['jax']}", flush=True)
    clf, model_name = classifier(args.model, "instruments")
    waves, labels = instrument_excerpts(max(max(pick["batches"]), pick["job_clips"]))
    labels = np.maximum(labels, 0)  # a two-instrument clip is attacked as its first class
    results = {"device": info, "model": model_name, "sizes": pick,
               "clip": {"samples": CLIP_SAMPLES, "sample_rate": SAMPLE_RATE},
               "settings": {n: _hyper(n) for n in ATTACKS}}
    if "attacks" not in args.skip:
        results["attacks"] = attack_rates(clf.logits_fn, waves, labels,
                                          batches=pick["batches"],
                                          iterations=pick["iterations"], repeats=args.repeats)
    if "whole_job" not in args.skip:
        n = pick["job_clips"]
        results["whole_job"] = whole_job(clf.logits_fn, waves[:n], labels[:n],
                                         slots=pick["job_slots"])
    if "lime" not in args.skip:
        results["lime"] = lime_rate(args.voice_model, excerpts=pick["lime_excerpts"],
                                    samples=pick["lime_samples"])
    if args.mixed_precision:
        b = min(32, max(pick["batches"]))
        results["mixed_precision"] = mixed_precision(clf, waves[:b], labels[:b],
                                                     iterations=max(pick["iterations"], 50),
                                                     repeats=args.repeats)
    out = pathlib.Path(args.out or f"benchmarks/results/gpu_{info['backend']}.json")
    if args.studies:
        results["studies"] = studies(args.studies, out.parent / f"studies_{args.studies}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
