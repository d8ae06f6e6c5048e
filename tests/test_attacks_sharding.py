"""Sharded attacks equal single-device attacks (4 simulated CPU devices, in a subprocess).

``XLA_FLAGS=--xla_force_host_platform_device_count=4`` must be set before JAX starts, hence the
subprocess. A batch of 6 is padded to 8 (2 examples per device) and stripped again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json
    import jax, jax.numpy as jnp, numpy as np
    from jaxaudio import attacks
    from jaxaudio.dsp import frontend

    assert len(jax.devices()) == 4, jax.devices()
    rng = np.random.default_rng(0)
    bands = np.zeros((8, 129), np.float32)
    edges = np.linspace(1, 129, 9).astype(int)
    for i in range(8):
        bands[i, edges[i]:edges[i + 1]] = 1.0
    weights = jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)

    @jax.jit
    def logits_fn(w):
        spec = frontend.spectrogram(w, n_fft=256, hop_length=128, pad_mode="constant")
        feats = jnp.log(jnp.einsum("bf,...ft->...bt", bands, spec) + 1e-6).mean(-1)
        return (feats - feats.mean(-1, keepdims=True)) @ weights

    t = np.arange(4096) / 16000.0
    x = np.stack([0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.normal(size=4096)
                  for f in (200.0, 700.0, 1500.0, 3000.0, 5000.0, 7000.0)]).astype(np.float32)
    labels = np.asarray(jnp.argmax(logits_fn(x), -1))
    key = jax.random.key(0)
    out = {}

    def compare(name, a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        diff = np.where(a == b, 0.0, np.abs(a - b)) if a.shape == b.shape else np.inf
        out[name] = {"shape_equal": a.shape == b.shape, "max_diff": float(np.max(diff))}

    pgd = dict(key=key, eps=1e-2, learning_rate=1e-3, max_iterations=30)
    single = attacks.pgd(logits_fn, x, labels, **pgd)
    multi = attacks.sharded(attacks.pgd)(logits_fn, x, labels, **pgd)
    for field in ("adversarial", "iterations", "success", "snr_db", "logits"):
        compare("pgd." + field, getattr(single, field), getattr(multi, field))

    target = (labels + 1) % 3
    cw = dict(target=target, clip_eps=5e-2, alpha=1.0, learning_rate=1e-3, max_iterations=30)
    single = attacks.carlini_wagner(logits_fn, x, labels, **cw)
    multi = attacks.sharded(attacks.carlini_wagner)(logits_fn, x, labels, **cw)
    for field in ("adversarial", "iterations", "success", "target"):
        compare("cw." + field, getattr(single, field), getattr(multi, field))

    eps = np.array([1e-3, 1e-2, 1e-1], np.float32)
    single = attacks.fgsm_sweep(logits_fn, x, labels, epsilons=eps)
    multi = attacks.sharded(attacks.fgsm_sweep)(logits_fn, x, labels, epsilons=eps)
    for field in ("success", "snr_db", "adversarial_prediction", "original_prediction"):
        compare("sweep." + field, getattr(single, field), getattr(multi, field))

    (xs, ls, ks), n = attacks.shard_batch((x, labels, attacks.example_keys(key, 6)))
    res = attacks.pgd(logits_fn, xs, ls, key=ks, eps=1e-2, learning_rate=1e-3,
                      max_iterations=30)
    out["padded_batch"] = int(xs.shape[0])
    out["devices_used"] = len(res.adversarial.sharding.device_set)
    out["successes"] = int(np.sum(np.asarray(single.success)))
    print("RESULT" + json.dumps(out))
    """
)


def test_sharded_attacks_equal_single_device_results():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    out = json.loads(line[len("RESULT"):])
    assert out["padded_batch"] == 8
    assert out["devices_used"] == 4
    assert out["successes"] >= 1
    for name, stats in out.items():
        if isinstance(stats, dict):
            assert stats["shape_equal"], name
            tolerance = 1e-4 if name.endswith(("snr_db", "logits")) else 1e-6
            assert stats["max_diff"] <= tolerance, (name, stats)
