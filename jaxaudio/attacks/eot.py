"""Expectation over transformation (EOT): adversaries that survive channels.

An attack made robust optimises the expected classification loss over random transformations
of its iterate instead of the loss at the iterate itself (Athalye et al., ICML 2018). Here that
is one more piece of the attack algebra, not a new loop: :func:`eot_logits_fn` wraps the
classifier's ``logits_fn`` so that every evaluation the loop makes sees the *transformed*
iterate, averaged over ``draws`` random transformations (mean of the log-probabilities, so the
softmax cross-entropy of the result is the mean cross-entropy up to a normaliser); :func:`robust`
runs any public attack on that wrapped function and re-judges the returned adversarial on the
plain classifier.

Transformations (per draw, composed in this order; each a pure function ``(wave (n,), key) ->
(n,)``, differentiable):

* ``"gain"``: a gain uniform in ±6 dB;
* ``"shift"``: a whole-sample time shift uniform in ±10 ms, zero-filled;
* ``"resample"``: what a 16 kHz -> 44.1 kHz -> 16 kHz round trip does to a band-limited
  signal: a low-pass at a random 90-100 % of the Nyquist frequency and a random sub-sample delay
  (both in the FFT domain);
* ``"noise"``: white Gaussian noise at a random 35-45 dB SNR;
* ``"mp3"`` / ``"ogg"``: the real codec (:func:`jaxaudio.dsp.channels.codec_round_trip`, host
  callback) in the forward pass and the identity in the backward pass (a straight-through
  estimate; the codec has no useful gradient).

Randomness without a key in the loop. The attack loop's step carries no PRNG key (its keys are
for random starts only), so each draw's key is derived from the evaluated array itself: a
32-bit hash of the waveform's bits, folded into ``jax.random.key(seed)``. Every iterate differs
(the optimiser moves it), so every step sees fresh transformations; the same iterate always sees
the same ones (deterministic and reproducible), and an example's draws do not depend on the
other examples of its batch (the loop evaluates one example at a time).
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio.dsp.batching import map_chunks
from jaxaudio.dsp.channels import codec_round_trip

__all__ = ["TRANSFORMS", "DIFFERENTIABLE", "eot_logits_fn", "robust", "transform"]

#: Transformations of :func:`eot_logits_fn`, by name.
TRANSFORMS = ("gain", "shift", "resample", "noise", "mp3", "ogg")
#: The differentiable ones (no host callback).
DIFFERENTIABLE = ("gain", "shift", "resample", "noise")

_CODECS = {"mp3": ("MP3", "MPEG_LAYER_III", 0.5), "ogg": ("OGG", "VORBIS", 0.5)}


def _gain(x, key, *, max_db=6.0):
    db = jax.random.uniform(key, (), minval=-max_db, maxval=max_db)
    return x * 10.0 ** (db / 20.0)


def _shift(x, key, *, rate, max_seconds=0.010):
    limit = int(round(max_seconds * rate))
    s = jax.random.randint(key, (), -limit, limit + 1)
    idx = jnp.arange(x.shape[-1])
    src = idx - s
    valid = (src >= 0) & (src < x.shape[-1])
    return jnp.where(valid, x[jnp.clip(src, 0, x.shape[-1] - 1)], 0.0)


def _resample(x, key):
    k1, k2 = jax.random.split(key)
    n = x.shape[-1]
    cutoff = jax.random.uniform(k1, (), minval=0.45, maxval=0.5)  # cycles/sample (0.5 = Nyquist)
    delay = jax.random.uniform(k2, (), minval=-0.5, maxval=0.5)   # samples
    freqs = jnp.fft.rfftfreq(n)
    # A linear band edge (0.01 cycles/sample wide) rather than a brick wall: less ringing.
    edge = jnp.clip((cutoff - freqs) / 0.01, 0.0, 1.0)
    response = edge * jnp.exp(-2j * jnp.pi * freqs * delay)
    return jnp.fft.irfft(jnp.fft.rfft(x) * response, n).astype(x.dtype)


def _noise(x, key, *, min_db=35.0, max_db=45.0):
    k1, k2 = jax.random.split(key)
    snr = jax.random.uniform(k1, (), minval=min_db, maxval=max_db)
    power = jax.lax.stop_gradient(jnp.mean(x * x))
    return x + jax.random.normal(k2, x.shape, x.dtype) * jnp.sqrt(power * 10.0 ** (-snr / 10.0))


def _codec_callback(x, fmt, subtype, level, rate):
    return codec_round_trip(np.asarray(x, np.float32), rate, fmt=fmt, subtype=subtype,
                            compression_level=level).astype(np.float32)


def _straight_through_codec(x, name, rate):
    fmt, subtype, level = _CODECS[name]
    coded = jax.pure_callback(
        functools.partial(_codec_callback, fmt=fmt, subtype=subtype, level=level, rate=rate),
        jax.ShapeDtypeStruct(x.shape, jnp.float32), jax.lax.stop_gradient(x),
        vmap_method="sequential")
    # Forward: the codec's output; backward: the identity.
    return x + jax.lax.stop_gradient(coded.astype(x.dtype) - x)


def transform(x, key, *, transforms: Sequence[str], rate: int):
    """One random draw of the composed ``transforms`` applied to one waveform ``x`` ``(n,)``."""
    keys = jax.random.split(key, len(transforms))
    for name, k in zip(transforms, keys):
        if name == "gain":
            x = _gain(x, k)
        elif name == "shift":
            x = _shift(x, k, rate=rate)
        elif name == "resample":
            x = _resample(x, k)
        elif name == "noise":
            x = _noise(x, k)
        elif name in _CODECS:
            x = _straight_through_codec(x, name, rate)
        else:
            raise ValueError(f"unknown transformation {name!r}; choose from {TRANSFORMS}")
    return x


def _content_key(base, x):
    """A key from ``base`` and a 32-bit hash of ``x``'s bits (no gradient flows here)."""
    bits = jax.lax.bitcast_convert_type(jax.lax.stop_gradient(x).astype(jnp.float32),
                                        jnp.uint32)
    weights = (jnp.arange(bits.size, dtype=jnp.uint32) * jnp.uint32(2654435761)) | 1
    return jax.random.fold_in(base, jnp.sum(bits.reshape(-1) * weights))


def _check(transforms, draws, rate):
    transforms = tuple(str(t) for t in transforms)
    bad = [t for t in transforms if t not in TRANSFORMS]
    if bad or not transforms:
        raise ValueError(f"transforms (--eot-transforms) must be a non-empty selection of "
                         f"{TRANSFORMS}, got {list(transforms)}")
    if int(draws) != draws or draws < 1:
        raise ValueError(f"draws (--eot-draws) must be an integer >= 1, got {draws!r}")
    if int(rate) != rate or rate <= 0:
        raise ValueError(f"rate must be a positive integer (Hz), got {rate!r}")
    return transforms, int(draws), int(rate)


@functools.lru_cache(maxsize=32)
def _wrapped(logits_fn, transforms, draws, rate, seed, include_identity):
    base = jax.random.key(seed)

    def one(x):  # (n,) -> (num_classes,)
        keys = jax.random.split(_content_key(base, x), draws)
        waves = jax.vmap(lambda k: transform(x, k, transforms=transforms, rate=rate))(keys)
        if include_identity:
            waves = jnp.concatenate([x[None], waves])
        return jnp.mean(jax.nn.log_softmax(logits_fn(waves), axis=-1), axis=0)

    return jax.jit(jax.vmap(one))


def eot_logits_fn(logits_fn: Callable, *, transforms: Sequence[str] = DIFFERENTIABLE,
                  draws: int = 4, rate: int = 16000, seed: int = 0,
                  include_identity: bool = True) -> Callable:
    """``logits_fn`` averaged over random transformations of its input.

    Parameters
    ----------
    logits_fn : callable
        ``(batch, n) -> (batch, num_classes)``, differentiable (softmax classifier).
    transforms : sequence of str
        Names of :data:`TRANSFORMS`, composed in the given order for every draw.
    draws : int >= 1
        Random draws per evaluation.
    rate : int
        Sample rate (Hz) of the waveforms (for the time shift and the codecs).
    seed : int
        Base of the per-evaluation keys (see the module docstring).
    include_identity : bool
        Also average in the untransformed input (keeps the adversary adversarial as it is).

    Returns
    -------
    callable
        ``(batch, n) -> (batch, num_classes)``: the mean log-probabilities over the draws. The
        same object for the same arguments (the attacks' compile cache is keyed on it).
    """
    transforms, draws, rate = _check(transforms, draws, rate)
    return _wrapped(logits_fn, transforms, draws, rate, int(seed), bool(include_identity))


def robust(attack_fn: Callable, *, transforms: Sequence[str] = DIFFERENTIABLE, draws: int = 4,
           rate: int = 16000, seed: int = 0, include_identity: bool = True,
           chunk_size: int = 16) -> Callable:
    """The EOT-robust version of a public attack (``attacks.pgd``, ``attacks.carlini_wagner``,
    ``attacks.sharded(attacks.pgd)``, ...): same signature and result type.

    The attack runs on :func:`eot_logits_fn` of the classifier (its success test, early stop
    and choice of the best iterate are therefore on the averaged decision). The returned
    :class:`~jaxaudio.attacks.AttackResult`'s ``success``, ``logits``, ``probabilities``,
    ``adversarial_prediction`` and ``original_prediction`` are then re-evaluated on the *plain* ``logits_fn`` at exactly
    the returned adversarial, so they mean what they mean for the plain attack. Softmax
    decisions only.

    Example::

        res = attacks.eot.robust(attacks.pgd, draws=4)(clf.logits_fn, waves, labels,
                                                       key=jax.random.key(0))
    """
    transforms, draws, rate = _check(transforms, draws, rate)

    def attack(logits_fn, x, labels, **kwargs):
        decision = kwargs.get("decision", getattr(kwargs.get("options"), "decision", "softmax"))
        if decision != "softmax":
            raise ValueError("robust attacks support decision='softmax' only")
        wrapped = eot_logits_fn(logits_fn, transforms=transforms, draws=draws, rate=rate,
                                seed=seed, include_identity=include_identity)
        res = attack_fn(wrapped, x, labels, **kwargs)
        adversarial = np.asarray(res.adversarial)
        logits = map_chunks(lambda w: np.asarray(logits_fn(w)), adversarial,
                            chunk_size=chunk_size, pad_single=False)
        pred = logits.argmax(-1).astype(np.int32)
        target = np.asarray(res.target)
        success = np.where(target >= 0, pred == target, pred != np.asarray(labels))
        original = map_chunks(lambda w: np.asarray(logits_fn(w)).argmax(-1), np.asarray(x),
                              chunk_size=chunk_size, pad_single=False).astype(np.int32)
        return res._replace(success=success, logits=logits, original_prediction=original,
                            probabilities=np.asarray(jax.nn.softmax(logits, axis=-1)),
                            adversarial_prediction=pred)

    attack.__name__ = f"robust_{getattr(attack_fn, '__name__', 'attack')}"
    attack.__doc__ = f"EOT-robust ({', '.join(transforms)}; {draws} draws) " + (
        attack_fn.__doc__ or "")
    return attack
