"""jaxaudio's attack iteration next to PyTorch's on the same model, weights and clips (CPU).

    python benchmarks/torch_side_by_side.py [--width 64] [--model DIR] [--batches 1 8 32]
        [--torch-batches 1 16 32] [--iterations 20] [--repeats 5]
        [--out benchmarks/results/torch_side_by_side_cpu.json]

Needs PyTorch (``pip install torch``; not a dependency of jaxaudio). The classifier
(``--model``, or an untrained one at ``--width``) is copied into an equivalent PyTorch module —
the same front-end (reflect-padded periodic-Hann STFT, librosa's mel filterbank, dB with
top_db 80, per-band standardisation) and the same AveragePoolCNN with TensorFlow-style SAME
padding — and the two are checked to give the same logits before anything is timed.

Three things are timed, in interleaved rounds so that a shared machine's load hits all alike;
each figure is the median over ``--repeats`` rounds, in milliseconds per example and iteration:

* **the published pattern** in PyTorch: batch 1, ``torch.optim.Adam`` on the sign of the
  gradient of the perturbation, weight gradients on, a second forward after every step to test
  success (a PGD step, L∞ projection);
* **PyTorch's bare batched input gradient**: forward + backward of the summed cross-entropy
  with respect to the input only (weights frozen), at each of ``--torch-batches``;
* **jaxaudio**: the whole PGD iteration of :func:`jaxaudio.attacks.make_attack` (early stopping
  off; the slope of a long run over a short one) and the bare jitted ``value_and_grad`` of the
  same objective, at each of ``--batches``; once as shipped ("tuned": the CPU compile options
  of :mod:`jaxaudio.attacks.compile_options`) and once with XLA's default options ("xla-defaults").

Both libraries use every core (``torch.set_num_threads(os.cpu_count())``; XLA's own pool).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from common import instrument_excerpts
from jaxaudio import attacks
from jaxaudio.training import tasks
from jaxaudio.attacks import driver
from jaxaudio.attacks.compile_options import jit_gradient
from jaxaudio.models import Classifier

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - reported to the user below
    torch = None


def same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow/XLA SAME padding (low, high) of one axis of size ``n``."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def torch_replica(clf: Classifier):
    """An equivalent ``torch.nn.Module`` of ``clf`` (waves ``(batch, samples)`` -> logits)."""
    cfg = clf.frontend
    params = clf.variables["params"]
    stats = clf.variables.get("batch_stats", {})

    def t(a):
        return torch.tensor(np.asarray(a), dtype=torch.float32)

    convs = sorted((k for k in params if k.startswith("Conv_")), key=lambda k: int(k[5:]))
    norms = sorted((k for k in params if k.startswith("BatchNorm_")), key=lambda k: int(k[10:]))

    class Replica(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.window = torch.nn.Buffer(t(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.n_fft)
                                                               / cfg.n_fft)))
            from jaxaudio.dsp import frontend as fe

            self.mel = torch.nn.Buffer(t(fe.mel_filterbank(
                sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                fmax=cfg.fmax, mel_scale=cfg.mel_scale, norm=cfg.norm)))
            self.mean = torch.nn.Buffer(t(clf.mean)[:, None])
            self.std = torch.nn.Buffer(torch.clamp(t(clf.std), min=1e-5)[:, None])
            # flax HWIO -> torch OIHW
            self.w = torch.nn.ParameterList(
                [torch.nn.Parameter(t(params[c]["kernel"]).permute(3, 2, 0, 1).contiguous())
                 for c in convs])
            self.b = torch.nn.ParameterList([torch.nn.Parameter(t(params[c]["bias"]))
                                             for c in convs])
            self.bn_scale = torch.nn.ParameterList(
                [torch.nn.Parameter(t(params[n]["scale"])) for n in norms])
            self.bn_bias = torch.nn.ParameterList(
                [torch.nn.Parameter(t(params[n]["bias"])) for n in norms])
            self.bn_mean = [t(stats[n]["mean"]) for n in norms]
            self.bn_var = [t(stats[n]["var"]) for n in norms]

        def features(self, waves):
            spec = torch.stft(waves, cfg.n_fft, cfg.hop_length, window=self.window, center=True,
                              pad_mode="reflect", return_complex=True)
            power = spec.real ** 2 + spec.imag ** 2
            if cfg.power != 2.0:
                power = power ** (cfg.power / 2)
            mel = torch.matmul(self.mel, power)
            db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
            if cfg.top_db is not None:
                peak = db.amax(dim=(-2, -1), keepdim=True)
                db = torch.maximum(db, peak - cfg.top_db)
            return (db - self.mean) / self.std

        def conv(self, x, i, stride=1):
            k = self.w[i].shape[-1]
            ph = same_pads(x.shape[2], k, stride)
            pw = same_pads(x.shape[3], k, stride)
            x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]))
            return F.conv2d(x, self.w[i], self.b[i], stride=stride)

        def block(self, x, i, stride=1):
            x = F.relu(self.conv(x, i, stride))
            inv = self.bn_scale[i] / torch.sqrt(self.bn_var[i] + 1e-5)
            return (x - self.bn_mean[i][:, None, None]) * inv[:, None, None] \
                + self.bn_bias[i][:, None, None]

        @staticmethod
        def pool(x, window):
            ph = same_pads(x.shape[2], window[0], window[0])
            pw = same_pads(x.shape[3], window[1], window[1])
            x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]))  # flax counts the padded zeros
            return F.avg_pool2d(x, window, window)

        def forward(self, waves):
            x = self.features(waves)[:, None]  # NCHW, H = mel bands, W = frames
            x = self.block(x, 0, 2)
            x = self.pool(self.block(x, 1), (2, 2))
            x = self.pool(self.block(self.block(x, 2), 3), (2, 3))
            x = self.pool(self.block(self.block(x, 4), 5), (2, 3))
            x = self.block(x, 6)
            x = self.conv(x, 7)
            return x.mean(dim=2).amax(dim=2)

    return Replica().eval()


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def published_pattern(model, wave, label, *, iterations, eps=5e-4, lr=1e-5):
    """Seconds of ``iterations`` PGD steps in the published per-example pattern."""
    x = torch.tensor(wave[None])
    y = torch.tensor([int(label)])
    delta = torch.zeros_like(x, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=lr)
    for p in model.parameters():
        p.requires_grad_(True)
    t0 = time.perf_counter()
    for _ in range(iterations):
        opt.zero_grad()
        model.zero_grad()
        loss = -F.cross_entropy(model(torch.clamp(x + delta, -1, 1)), y)
        loss.backward()  # weight gradients are computed too
        delta.grad = torch.sign(delta.grad)
        opt.step()
        with torch.no_grad():
            delta.clamp_(-eps, eps)
            _ = model(torch.clamp(x + delta, -1, 1)).argmax(-1) != y  # the success test
    return time.perf_counter() - t0


def torch_input_gradient(model, waves, labels, *, calls):
    """Seconds per call of a batched forward + input-only backward."""
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.tensor(waves)
    y = torch.tensor(labels.astype(np.int64))
    t0 = time.perf_counter()
    for _ in range(calls):
        xi = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(xi), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, xi)
    return (time.perf_counter() - t0) / calls


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--model", default=None, help="trained classifier (…/model)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--torch-batches", type=int, nargs="+", default=[1, 16, 32])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/torch_side_by_side_cpu.json")
    args = parser.parse_args(argv)
    if torch is None:
        parser.error("PyTorch is not installed: pip install torch")
    torch.set_num_threads(os.cpu_count() or 1)

    if args.model:
        clf, what = Classifier.load(args.model), args.model
    else:
        p = dataclasses.replace(tasks.preset("instruments", "demo"), width=args.width)
        clf, what = tasks.new_classifier("instruments", p, seed=0), f"untrained, width {args.width}"
    n = max(args.batches + args.torch_batches)
    waves, labels = instrument_excerpts(n)
    labels = np.where(labels < 0, 0, labels).astype(np.int32)

    model = torch_replica(clf)
    with torch.no_grad():
        ref = model(torch.tensor(waves[:4])).numpy()
    ours = np.asarray(clf.logits_fn(jnp.asarray(waves[:4])))
    parity = float(np.max(np.abs(ref - ours)) / max(np.max(np.abs(ours)), 1e-6))
    print(f"model: {what}; logits parity (max abs diff / max |logit|): {parity:.2e}", flush=True)
    if parity > 1e-3:
        raise SystemExit("the PyTorch replica does not compute the same logits")

    iters, short = args.iterations, max(1, args.iterations // 4)
    jax_fns = {}
    # "tuned" = jaxaudio as shipped (jaxaudio.attacks.compile_options on the attack programs);
    # "xla-defaults" = the same programs compiled with XLA's default CPU options.
    for variant, tuning in (("tuned", "1"), ("xla-defaults", "0")):
        os.environ["JAXAUDIO_XLA_CPU_TUNING"] = tuning
        driver.clear_cache()
        for b in args.batches:
            x, y = jnp.asarray(waves[:b]), jnp.asarray(labels[:b])
            keys = jax.random.split(jax.random.key(0), b)
            fn = attacks.make_attack("pgd", clf.logits_fn, early_stop=False, random_start=True)
            hyper = attacks.as_hyper(learning_rate=1e-5, eps=5e-4)
            tgt = jnp.full((b,), -1, jnp.int32)

            def loss(xb, y=y):
                lg = clf.logits_fn(xb)
                return -jnp.sum(jax.nn.log_softmax(lg)[jnp.arange(xb.shape[0]), y])

            bare = jit_gradient(jax.value_and_grad(loss))
            run = (lambda s, fn=fn, x=x, y=y, tgt=tgt, keys=keys, hyper=hyper:
                   fn(x, y, tgt, keys, hyper, jnp.asarray(s, jnp.int32)).adversarial)
            for s in (short, iters):
                jax.block_until_ready(run(s))
            jax.block_until_ready(bare(x))
            jax_fns[(variant, b)] = (run, bare, x)
    os.environ.pop("JAXAUDIO_XLA_CPU_TUNING")
    published_pattern(model, waves[0], labels[0], iterations=2)  # warm-up
    for b in args.torch_batches:
        torch_input_gradient(model, waves[:b], labels[:b], calls=1)

    rounds: dict[str, list[float]] = {}

    def rec(k, v):
        rounds.setdefault(k, []).append(v)

    for r in range(args.repeats):
        rec("torch_published_pattern_b1",
            published_pattern(model, waves[r % n], labels[r % n], iterations=iters) / iters)
        for b in args.torch_batches:
            rec(f"torch_input_gradient_b{b}",
                torch_input_gradient(model, waves[:b], labels[:b], calls=max(2, iters // 4)) / b)
        for (variant, b), (run, bare, x) in jax_fns.items():
            ts, tl = (_seconds(lambda s=s: jax.block_until_ready(run(s))) for s in (short, iters))
            rec(f"jaxaudio_{variant}_pgd_iteration_b{b}", (tl - ts) / (iters - short) / b)
            calls = max(2, iters // 4)
            t0 = time.perf_counter()
            for _ in range(calls):
                out = bare(x)
            jax.block_until_ready(out)
            rec(f"jaxaudio_{variant}_bare_value_and_grad_b{b}",
                (time.perf_counter() - t0) / calls / b)
        print(f"round {r + 1}/{args.repeats} done", flush=True)

    ms = {k: 1e3 * statistics.median(v) for k, v in rounds.items()}
    best_torch_bare = min(ms[f"torch_input_gradient_b{b}"] for b in args.torch_batches)
    pub = ms["torch_published_pattern_b1"]
    print(f"\n{'measurement':48s} {'ms/example-iter':>16s} {'vs published':>13s} "
          f"{'vs best torch bare':>19s}")
    for k, v in ms.items():
        print(f"{k:48s} {v:16.2f} {pub / v:12.2f}x {best_torch_bare / v:18.2f}x")
    out = {"machine": f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()})",
           "jax": jax.__version__, "torch": torch.__version__, "model": what,
           "iterations": iters, "repeats": args.repeats, "logits_parity": parity,
           "ms_per_example_iteration": ms,
           "rounds_ms": {k: [1e3 * x for x in v] for k, v in rounds.items()}}
    path = pathlib.Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
