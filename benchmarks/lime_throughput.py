"""Seconds per LIME explanation of the singing voice detector (docs/studies.md §3, issue 4).

    python benchmarks/lime_throughput.py [--model DIR] [--num-samples 8192] [--repeats 3]

Three ways to get the same explanation (8192 perturbations of one 80 x 115 spectrogram,
5 x 4 components, mean baseline, lime's ridge surrogate):

(a) ``bridge``: :func:`jaxaudio.explain.explain` — samples drawn on device, perturbed
    spectrograms composed on device and evaluated in chunks by one compiled program, surrogate
    fitted by ``lime.lime_base.LimeBase``.
(b) ``one_at_a_time``: the way the original study did it — the unmodified
    ``lime.lime_image.LimeImageExplainer`` with ``batch_size=1``, i.e. LIME composes every
    perturbed spectrogram in numpy and calls the predict function (the same jitted detector)
    with one spectrogram at a time.
(c) ``floor``: nothing but ``num_samples`` forward passes of the jitted detector at the best
    batch size (a sweep), on an already composed batch.

Also reported: the bridge's time split (sampling+composing+forward passes vs surrogate fit)
and a chunk-size sweep (the bridge used 1024 on every backend before; see
:func:`jaxaudio.explain.default_chunk_size`). Each figure is the median over ``--repeats`` runs
after one warm-up (compilation excluded). Writes JSON to
``benchmarks/results/lime_throughput_<backend>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pathlib
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np


def _machine() -> dict:
    dev = jax.devices()[0]
    info = {"backend": jax.default_backend(), "device_kind": dev.device_kind,
            "num_devices": jax.device_count(), "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "jax": jax.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            names = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
        if names:
            info["cpu_model"] = names[0]
    except OSError:
        pass
    if hasattr(os, "getloadavg"):
        info["load_average_start"] = os.getloadavg()
    return info


def _median_time(fn, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up: compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def _detector(model: str | None, width: int):
    from jaxaudio.training import tasks
    from jaxaudio.models import Classifier

    if model:
        return Classifier.load(model)
    p = tasks.preset("voice", "demo")
    import dataclasses

    return tasks.new_classifier("voice", dataclasses.replace(p, width=width), seed=0)


def _spectrogram(clf) -> np.ndarray:
    from jaxaudio.training import tasks
    from jaxaudio.training.train import song_padded

    songs = tasks.load_split("synth-voice", "test", preset_name="smoke", seed=0)
    hop = clf.frontend.hop_length
    wave = song_padded(songs.waves[0], clf.excerpt_frames, hop)[100 * hop:100 * hop + clf.excerpt_samples]
    return np.asarray(clf.features(jnp.asarray(wave[None])))[0]


def main(argv=None) -> int:
    from lime import lime_base, lime_image

    from jaxaudio import explain as ex

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="saved singing voice detector (default: a "
                    "freshly initialised one of --width; speed does not depend on the weights)")
    ap.add_argument("--width", type=int, default=16, help="detector width without --model "
                    "(16 = the demo preset, 64 = the paper)")
    ap.add_argument("--num-samples", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-sizes", default="1,4,8,16,32,64,128,256,1024")
    ap.add_argument("--chunk-sizes", default="16,64,256,1024")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    machine = _machine()
    clf = _detector(args.model, args.width)
    spec = _spectrogram(clf)
    n = int(args.num_samples)
    predict = ex.binary_to_two_class(clf.feature_logits_fn, from_logits=True)
    forward = jax.jit(predict)
    masks = ex.component_masks(spec.shape)
    key = jax.random.key(0)
    results: dict = {"machine": machine, "num_samples": n, "repeats": args.repeats,
                     "detector": {"width": int(clf.model_kwargs["width"]),
                                  "input_shape": list(spec.shape)}}

    # (c) the floor: forward passes only, best batch size.
    sweep = {}
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        x = jnp.asarray(np.repeat(spec[None], bs, 0))
        calls = -(-n // bs)

        def floor(x=x, calls=calls):
            for _ in range(calls):
                out = forward(x)
            out.block_until_ready()

        sweep[bs], _ = _median_time(floor, args.repeats)
        print(f"floor batch {bs:5d}: {sweep[bs]:.3f} s / {n} forward passes", flush=True)
    best_bs = min(sweep, key=sweep.get)
    results["floor"] = {"seconds": sweep[best_bs], "best_batch_size": best_bs,
                        "by_batch_size": {str(k): v for k, v in sweep.items()}}

    # (a) the bridge, default chunk size, and its split.
    def bridge():
        return ex.explain(predict, spec, key=key, num_samples=n, keep_predictions=False)

    a, a_times = _median_time(bridge, args.repeats)
    base = ex.baseline_value(spec, "mean")
    z = np.asarray(ex.sample_components(key, n, masks.shape[0]))
    preds = ex.predict_components(predict, spec, masks, base, z)
    forward_part, _ = _median_time(lambda: ex.predict_components(predict, spec, masks, base, z),
                                   args.repeats)
    data = z.astype(np.int64)

    def fit():
        d = ex.lime_distances(data)
        lime_base.LimeBase(lambda dd: ex.lime_kernel(dd), random_state=0).explain_instance_with_data(
            data, preds, d, 1, 100000)

    fit_part, _ = _median_time(fit, args.repeats)
    results["bridge"] = {"seconds": a, "all": a_times, "chunk_size": ex.default_chunk_size(),
                         "split": {"compose_and_forward": forward_part, "surrogate_fit": fit_part}}
    print(f"bridge: {a:.3f} s (compose+forward {forward_part:.3f}, lime fit {fit_part:.3f})",
          flush=True)
    chunks = {}
    for cs in [int(c) for c in args.chunk_sizes.split(",")]:
        chunks[str(cs)], _ = _median_time(
            lambda cs=cs: ex.explain(predict, spec, key=key, num_samples=n, chunk_size=cs,
                                     keep_predictions=False), max(1, args.repeats - 1))
        print(f"bridge chunk {cs:5d}: {chunks[str(cs)]:.3f} s", flush=True)
    results["bridge"]["by_chunk_size"] = chunks

    # (b) the original study's way: lime_image, one perturbed spectrogram per predict call.
    def classifier_fn(images):
        return np.asarray(forward(jnp.asarray(images[..., 0], jnp.float32)), np.float64)

    segments = ex.component_map(spec.shape)

    def one_at_a_time():
        with contextlib.redirect_stderr(io.StringIO()):  # lime_image's tqdm bar
            lime_image.LimeImageExplainer(random_state=0).explain_instance(
                spec.astype(np.float64), classifier_fn, labels=(1,), top_labels=None,
                hide_color=float(spec.mean()), num_samples=n, batch_size=1,
                segmentation_fn=lambda image: segments, random_seed=0)

    b, b_times = _median_time(one_at_a_time, args.repeats)
    results["one_at_a_time"] = {"seconds": b, "all": b_times}
    print(f"one at a time (lime_image, batch_size=1): {b:.3f} s", flush=True)

    results["ratios"] = {"one_at_a_time_over_bridge": b / a, "bridge_over_floor": a / sweep[best_bs]}
    results["targets"] = {"speedup_vs_one_at_a_time": ">= 20", "bridge_over_floor": "<= 1.5",
                          "met": {"speedup": b / a >= 20, "floor": a / sweep[best_bs] <= 1.5}}
    if hasattr(os, "getloadavg"):
        machine["load_average_end"] = os.getloadavg()

    rows = [("(a) bridge (jaxaudio)", a), ("(b) one at a time (lime_image, batch 1)", b),
            (f"(c) floor: forward passes only, batch {best_bs}", sweep[best_bs])]
    print(f"\n{machine.get('cpu_model', machine['device_kind'])} ({machine['backend']}, {machine['cpu_count']} CPUs), "
          f"detector width {results['detector']['width']}, {n} samples, median of {args.repeats}")
    print(f"{'method':48s} {'s/explanation':>14s}")
    for name, sec in rows:
        print(f"{name:48s} {sec:14.3f}")
    print(f"(b)/(a) = {b / a:.2f}x (target >= 20x);  (a)/(c) = {a / sweep[best_bs]:.2f}x (target <= 1.5x)")
    out = pathlib.Path(args.out or pathlib.Path(__file__).parent / "results" /
                       f"lime_throughput_{machine['backend']}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
