"""K models trained at once with ``jax.vmap`` vs one after another (label-noise study).

Three modes of :func:`jaxaudio.training.many.train_many` on the same clips (K different
corrupted label sets, as in the study): ``vmap`` (one compiled step, networks vmapped over
stacked states, front-end once per batch), ``shared`` (front-end once per batch, then each
model's step in a Python loop) and ``sequential`` (one whole training after another). Reports
the median wall time over repeats (compilation excluded: a warm-up round compiles every step),
the speed-up over sequential, the cost per model-step and the machine. Note the machine's other
load (printed): timings on a shared CPU are noisy, the modes are interleaved to share it.

    python benchmarks/label_noise_vmap.py --models 10 --width 8 --frames 58 --clips 192
    python benchmarks/label_noise_vmap.py --preset demo     # the study's demo sizes

Measured on the shared 2-core development CPU (load average 5-7 from other work; the JSON files
are in benchmarks/results/): 10 models, width 8, 58 frames, 96 clips: ms per model-step
vmap 97, shared 43, sequential 51 (vmap 0.53x, shared 1.18x the sequential speed); 2 models,
width 64, 116 frames: vmap 11970, shared 2457, sequential 2277 (vmap 0.19x, shared 0.93x).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import jax
import numpy as np


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}; {os.cpu_count()} logical CPUs; jax {jax.__version__} on "
            f"{jax.devices()[0].platform}")


def main(argv=None) -> int:
    from jaxaudio.data.corruption import corrupt_labels
    from jaxaudio.data.synth_instruments import make_synth_instruments
    from jaxaudio.studies import label_noise
    from jaxaudio.training.train import TrainConfig
    from jaxaudio.training.many import TRAIN_MODES, train_many

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("smoke", "demo", "paper"), default=None,
                        help="take width/frames/clips/batch from the study preset")
    parser.add_argument("--models", type=int, default=10, help="K, models trained together")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--frames", type=int, default=58, help="excerpt length (frames)")
    parser.add_argument("--clips", type=int, default=192, help="training clips")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    if args.preset is not None:
        p = label_noise.PRESETS[args.preset]
        args.width, args.frames = p.width, p.excerpt_frames
        args.clips = p.num_curated or label_noise.PAPER_SYNTH_SIZES["curated"]
        args.batch_size = p.batch_size

    data = make_synth_instruments(split="curated", num_clips=args.clips, seed=0,
                                  min_seconds=0.5, max_seconds=4.0)
    rates = np.linspace(0.0, 0.9, args.models)
    targets = np.stack([np.eye(12, dtype=np.float32)[
        corrupt_labels(data.labels, rate=r, num_classes=12, seed=k)[0]]
        for k, r in enumerate(rates)])
    clf = label_noise.new_classifier(width=args.width, excerpt_frames=args.frames, seed=0,
                                     label_names=data.label_names)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=0,
                         stats_excerpts=64)
    times = {mode: [] for mode in TRAIN_MODES}
    for repeat in range(args.repeats + 1):  # the first round compiles (not counted)
        for mode in TRAIN_MODES:  # interleaved, so load changes hit every mode alike
            t0 = time.perf_counter()
            res = train_many(clf, data.waves, targets, config, mode=mode, prng_impl="rbg",
                             progress=False)
            jax.block_until_ready(res.variables)
            if repeat > 0:
                times[mode].append(time.perf_counter() - t0)
    steps = res.steps
    median = {mode: statistics.median(t) for mode, t in times.items()}
    out = {
        "machine": machine(), "load_average_1min": os.getloadavg()[0],
        "models": args.models, "width": args.width,
        "excerpt_frames": args.frames, "clips": args.clips, "batch_size": args.batch_size,
        "epochs": args.epochs, "steps_per_model": steps, "repeats": args.repeats,
        "seconds_median": median, "seconds": times,
        "speedup_over_sequential": {m: median["sequential"] / v for m, v in median.items()},
        "ms_per_model_step": {m: 1e3 * v / (steps * args.models) for m, v in median.items()},
        "fastest": min(median, key=median.get),
    }
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
