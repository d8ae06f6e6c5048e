"""Front-end parity with librosa and gradient safety."""

import chex
import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

from jaxaudio.dsp import frontend as fe

SR = 16000


def _signals():
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    t = np.arange(SR) / SR
    music = (0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-3 * t)
             + 0.2 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(SR))
    return {"noise": noise, "music": music.astype(np.float32)}


@pytest.mark.parametrize("signal", ["noise", "music"])
@pytest.mark.parametrize("mel_scale,norm", [("htk", None), ("slaney", "slaney")])
@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_mel_and_db_match_librosa(signal, mel_scale, norm, pad_mode):
    y = _signals()[signal]
    kwargs = dict(n_fft=2048, hop_length=512, n_mels=100, fmin=40.0, fmax=None, power=2.0)
    ref = librosa.feature.melspectrogram(y=y, sr=SR, htk=(mel_scale == "htk"), norm=norm,
                                         center=True, pad_mode=pad_mode, **kwargs)
    out = np.asarray(fe.mel_spectrogram(y, sample_rate=SR, mel_scale=mel_scale, norm=norm,
                                        pad_mode=pad_mode, **kwargs))
    assert out.shape == ref.shape
    assert np.max(np.abs(out - ref)) <= 1e-4 * np.max(np.abs(ref))
    db_ref = librosa.power_to_db(ref, ref=1.0, amin=1e-10, top_db=80.0)
    assert np.max(np.abs(np.asarray(fe.power_to_db(out, top_db=80.0)) - db_ref)) <= 0.01


def test_power_to_db_is_per_example():
    y = _signals()["music"]
    batch = np.stack([y, 0.001 * y])
    S = fe.mel_spectrogram(batch, sample_rate=SR, n_fft=512, hop_length=256, n_mels=40)
    db = np.asarray(fe.power_to_db(S))
    for i in range(2):
        ref = librosa.power_to_db(np.asarray(S[i]), ref=1.0, amin=1e-10, top_db=80.0)
        np.testing.assert_allclose(db[i], ref, atol=0.01)


def test_magnitude_and_voice_frontend_match_librosa():
    sr = 22050
    y = np.random.default_rng(1).uniform(-0.5, 0.5, sr).astype(np.float32)
    cfg = fe.FrontendConfig.voice()
    ref = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=315, n_mels=80,
                                         fmin=27.5, fmax=8000.0, power=1.0, htk=True, norm=None,
                                         pad_mode="reflect")
    out = np.asarray(fe.mel_spectrogram(y, sample_rate=sr, n_fft=1024, hop_length=315,
                                        n_mels=80, fmin=27.5, fmax=8000.0, power=1.0))
    assert np.max(np.abs(out - ref)) <= 1e-4 * np.max(ref)
    feats = np.asarray(fe.features(y, cfg))
    np.testing.assert_allclose(feats, np.log(np.maximum(ref, 1e-7)), atol=1e-3)


@pytest.mark.parametrize("config", [fe.FrontendConfig.instrument(), fe.FrontendConfig.voice()],
                         ids=["instrument", "voice"])
@pytest.mark.parametrize("kind", ["silence", "clipped", "quiet"])
def test_gradients_finite(config, kind):
    n = config.sample_rate // 2
    rng = np.random.default_rng(0)
    wave = {"silence": np.zeros(n),
            "clipped": np.sign(rng.standard_normal(n)),
            "quiet": 1e-6 * rng.standard_normal(n)}[kind].astype(np.float32)
    grad = jax.grad(lambda w: jnp.sum(fe.features(w, config)))(jnp.asarray(wave))
    assert np.all(np.isfinite(np.asarray(grad)))


class FeaturesJitOrNot(chex.TestCase):
    """The front-end gives the same features compiled and run op by op, batched or one clip
    at a time, in the documented shape ``(..., n_mels, frames)``."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_batch_equals_single_and_shapes(self):
        y = _signals()["noise"]
        cfg = fe.FrontendConfig()
        features = self.variant(lambda w: fe.features(w, cfg))
        batch = features(jnp.stack([y, y[::-1]]))
        chex.assert_shape(batch, (2, 100, fe.num_frames(len(y), 512)))
        chex.assert_tree_all_finite(batch)
        chex.assert_trees_all_close(batch[1], features(jnp.asarray(y[::-1].copy())), atol=1e-5)
        chex.assert_trees_all_close(batch, fe.features(np.stack([y, y[::-1]]), cfg), atol=1e-4)


def test_bad_parameters_and_inputs():
    with pytest.raises(ValueError, match="pad_mode"):
        fe.FrontendConfig(pad_mode="wrap")
    with pytest.raises(ValueError, match="mel_scale"):
        fe.FrontendConfig(mel_scale="bark")
    with pytest.raises(ValueError, match="too short"):
        fe.stft(np.zeros(100, np.float32), n_fft=2048, hop_length=512)
    with pytest.raises(ValueError, match="NaN"):
        fe.check_waves(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="fmax"):
        fe.mel_filterbank(sample_rate=16000, n_fft=512, n_mels=10, fmax=9000.0)


@pytest.mark.parametrize("num_samples,n_fft,hop", [(4000, 2048, 512), (1000, 16, 4),
                                                    (5000, 1024, 315), (777, 8, 8)])
def test_frame_equals_the_gather_of_every_window(num_samples, n_fft, hop):
    # hop dividing n_fft takes the slice path, the others the gather: both are frame i =
    # padded[i * hop : i * hop + n_fft], and so is their gradient (a sum of slices).
    padded = jnp.asarray(np.random.default_rng(0).normal(size=(2, num_samples + n_fft)),
                         jnp.float32)
    frames = fe.num_frames(num_samples, hop)
    index = np.arange(frames)[:, None] * hop + np.arange(n_fft)[None]
    got = fe.frame(padded, frames=frames, n_fft=n_fft, hop_length=hop)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(padded)[..., index])
    weights = jnp.asarray(np.random.default_rng(1).normal(size=got.shape), jnp.float32)
    grad = jax.grad(lambda p: jnp.sum(weights * fe.frame(p, frames=frames, n_fft=n_fft,
                                                         hop_length=hop)))(padded)
    expected = np.zeros(padded.shape, np.float32)
    np.add.at(expected, (slice(None), index), np.asarray(weights))
    np.testing.assert_allclose(np.asarray(grad), expected, rtol=1e-5, atol=1e-5)
