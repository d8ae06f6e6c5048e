"""Where one attack iteration's time goes on this machine: front-end, each convolution forward
and its data gradient, with achieved FLOP/s.

    python benchmarks/profile_attack_step.py [--width 64] [--batch 32] [--repeats 5]
        [--out benchmarks/results/profile_attack_step_cpu.json]

An attack iteration is one ``value_and_grad`` of the loss with respect to the *waveform*: the
front-end (STFT, mel, dB, standardisation) forward and backward, then the CNN forward and the
gradient with respect to its input only (no weight gradients). Measured at the instrument
classifier's shapes (3-s clips at 16 kHz, ``--width`` channels, batch ``--batch``), each piece
compiled on its own:

* the whole iteration (``value_and_grad`` of the cross-entropy w.r.t. the waves);
* the front-end alone, forward and forward+backward;
* every convolution of the CNN at its real input shape: forward, and the gradient w.r.t. its
  input (``jax.vjp``), and — for the stride-1 layers — the same gradient written as a forward
  convolution of the incoming gradient with the flipped, transposed kernel (what a custom VJP
  could run instead).

Every piece is compiled twice and timed alternately (the lower of two medians each): with
XLA's default CPU options and with the options jaxaudio gives its attack programs
(:mod:`jaxaudio.attacks.compile_options`: convolutions by XLA's own Eigen kernels instead of YNNPACK).

FLOPs come from XLA's own cost analysis of each compiled piece; "achieved" = FLOPs / median
seconds. The machine's peak is estimated as cores x GHz x 32 single-precision FLOPs per
cycle (two 8-wide FMA units) or what a 2048x2048 float32 matrix product reaches, whichever is
higher, unless ``--peak-gflops`` is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from common import median_seconds
from jaxaudio.dsp import frontend as fe
from jaxaudio.training import tasks
from jaxaudio.attacks.compile_options import gradient_options


def flops(fn, *args) -> float:
    try:
        cost = jax.jit(fn).lower(*args).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost.get("flops", float("nan")))
    except Exception:  # cost analysis is best effort on some backends
        return float("nan")


def peak_gflops() -> float:
    ghz = None
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(l.split(":")[1]) for l in f if l.startswith("cpu MHz")]
        ghz = max(mhz) / 1000 if mhz else None
    except OSError:
        pass
    return (os.cpu_count() or 1) * (ghz or 2.5) * 32


def conv_layers(width: int):
    """(name, kernel, in_ch, out_ch, stride, pool after) of the AveragePoolCNN."""
    w = width
    return [("conv1 5x5/2", 5, 1, w, 2, None), ("conv2 3x3", 3, w, w, 1, (2, 2)),
            ("conv3 3x3", 3, w, 2 * w, 1, None), ("conv4 3x3", 3, 2 * w, 2 * w, 1, (2, 3)),
            ("conv5 3x3", 3, 2 * w, 4 * w, 1, None), ("conv6 3x3", 3, 4 * w, 4 * w, 1, (2, 3)),
            ("conv7 1x1", 1, 4 * w, 8 * w, 1, None), ("conv8 1x1", 1, 8 * w, 12, 1, None)]


def conv(x, kernel, stride):
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peak-gflops", type=float, default=None)
    parser.add_argument("--out", default="benchmarks/results/profile_attack_step_cpu.json")
    args = parser.parse_args(argv)

    p = dataclasses.replace(tasks.preset("instruments", "demo"), width=args.width)
    clf = tasks.new_classifier("instruments", p, seed=0)
    rng = np.random.default_rng(0)
    n = int(args.seconds * clf.frontend.sample_rate)
    waves = jnp.asarray(0.1 * rng.standard_normal((args.batch, n)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 12, args.batch), jnp.int32)
    rows, r = [], args.repeats

    def loss(w):
        logits = clf.logits_fn(w)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(args.batch), labels])

    options = gradient_options()  # what the attack programs are compiled with

    def add(name, fn, *a):
        # Each piece twice: XLA's default CPU options, and the attack programs' options
        # (jaxaudio.attacks.compile_options: no YNNPACK fusions); timed alternately.
        default, tuned = jax.jit(fn), jax.jit(fn, compiler_options=options)
        t_default, t_tuned = [], []
        for _ in range(2):
            t_default.append(median_seconds(lambda: default(*a), r))
            t_tuned.append(median_seconds(lambda: tuned(*a), r))
        t, tt = min(t_default), min(t_tuned)
        f = flops(fn, *a)
        rows.append({"piece": name, "ms_per_example": 1e3 * t / args.batch,
                     "gflops_per_s": f / t / 1e9 if np.isfinite(f) else None,
                     "tuned_ms_per_example": 1e3 * tt / args.batch,
                     "tuned_gflops_per_s": f / tt / 1e9 if np.isfinite(f) else None,
                     "flops_per_example": f / args.batch})
        g, gt = rows[-1]["gflops_per_s"], rows[-1]["tuned_gflops_per_s"]
        print(f"{name:44s} {rows[-1]['ms_per_example']:8.2f} ms/ex"
              + (f" {g:6.1f} GFLOP/s" if g else "")
              + f" | tuned {rows[-1]['tuned_ms_per_example']:8.2f} ms/ex"
              + (f" {gt:6.1f} GFLOP/s" if gt else ""), flush=True)

    add("whole iteration: value_and_grad w.r.t. waves", jax.value_and_grad(loss), waves)
    feats_fn = lambda w: fe.standardize(clf.features(w), clf.mean, clf.std)
    add("front-end forward", feats_fn, waves)
    add("front-end forward + backward", jax.grad(lambda w: jnp.sum(feats_fn(w))), waves)
    x = feats_fn(waves)[..., None]
    add("CNN forward (standardised features)",
        lambda v: clf.module.apply(clf.variables, v[..., 0], train=False), x)
    add("CNN forward + input gradient", jax.grad(
        lambda v: jnp.sum(clf.module.apply(clf.variables, v[..., 0], train=False))), x)

    for name, k, cin, cout, stride, pool in conv_layers(args.width):
        kern = jnp.asarray(rng.standard_normal((k, k, cin, cout)) / np.sqrt(k * k * cin),
                           jnp.float32)
        xin = jnp.asarray(rng.standard_normal(x.shape[:3] + (cin,)), jnp.float32)
        add(f"{name} forward {tuple(xin.shape[1:])}", lambda v: conv(v, kern, stride), xin)
        y, vjp = jax.vjp(lambda v: conv(v, kern, stride), xin)
        gy = jnp.ones_like(y)
        add(f"{name} input gradient (jax.vjp)", lambda g: vjp(g)[0], gy)
        if stride == 1:
            flipped = jnp.flip(kern, (0, 1)).transpose(0, 1, 3, 2)
            add(f"{name} input gradient as a forward conv", lambda g: conv(g, flipped, 1), gy)
        x = conv(xin, kern, stride)
        if pool is not None:
            x = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, *pool, 1), (1, *pool, 1),
                                      "SAME") / (pool[0] * pool[1])

    estimate = peak_gflops()
    n = 2048  # what the machine reaches on a large matrix product: the practical ceiling
    a = jnp.asarray(rng.standard_normal((n, n)), jnp.float32)
    matmul = jax.jit(lambda u: u @ u)
    matmul_gflops = 2 * n ** 3 / min(median_seconds(lambda: matmul(a), r) for _ in range(2)) / 1e9
    print(f"float32 {n}x{n} matrix product: {matmul_gflops:.0f} GFLOP/s", flush=True)
    peak = args.peak_gflops or max(estimate, matmul_gflops)
    out = {"device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
           "cpu_count": os.cpu_count(), "jax": jax.__version__, "width": args.width,
           "batch": args.batch, "clip_seconds": args.seconds, "peak_gflops_estimate": estimate,
           "matmul_gflops": matmul_gflops, "peak_gflops_used": peak,
           "rows": rows}
    path = pathlib.Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    whole = rows[0]
    print(f"peak {peak:.0f} GFLOP/s (clock estimate {estimate:.0f}, matrix product "
          f"{matmul_gflops:.0f}); whole iteration at {(whole['gflops_per_s'] or 0) / peak:.1%} "
          f"of it (XLA defaults), {(whole['tuned_gflops_per_s'] or 0) / peak:.1%} tuned; "
          f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
