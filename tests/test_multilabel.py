"""The multi-label tagger: sigmoid decision recorded in the saved model, binary cross-entropy
training, tag sets in predict; the mixed (multi-label) synthetic clips."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudio.dsp import frontend as fe
from jaxaudio.data.synth_instruments import make_mixed_instruments
from jaxaudio.models import Classifier
from jaxaudio.models.cnn import AveragePoolCNN

FRONTEND = fe.FrontendConfig(n_fft=256, hop_length=128, n_mels=16)


@pytest.fixture(scope="module")
def tagger():
    module = AveragePoolCNN(num_classes=3, width=4)
    variables = jax.jit(lambda k: module.init(k, jnp.zeros((1, 16, 16)), train=False))(
        jax.random.key(0, impl="rbg"))
    return Classifier(frontend=FRONTEND, model_name="avgpool_cnn",
                      model_kwargs={"num_classes": 3, "width": 4}, variables=variables,
                      mean=np.zeros(16, np.float32), std=np.ones(16, np.float32),
                      label_names=("a", "b", "c"), task="multilabel", excerpt_frames=16)


def _waves(n=4, samples=2600):
    t = np.arange(samples) / 16000
    return np.stack([0.3 * np.sin(2 * np.pi * (300 + 500 * i) * t) for i in range(n)]
                    ).astype(np.float32)


def test_tagger_scores_are_independent_sigmoids_and_its_tags_threshold_them(tagger):
    waves = _waves()
    logits = np.asarray(tagger.logits(waves))
    probs = np.asarray(tagger.probabilities_fn(jnp.asarray(waves)))
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits)), rtol=1e-5)
    assert not np.allclose(probs.sum(1), 1.0)
    np.testing.assert_array_equal(tagger.predict_tags(waves), logits > 0)
    np.testing.assert_array_equal(tagger.predict_tags(waves, threshold=0.9),
                                  probs > 0.9)
    single = dataclasses.replace(tagger, task="multiclass")
    np.testing.assert_allclose(np.asarray(single.probabilities_fn(jnp.asarray(waves))).sum(1),
                               1.0, rtol=1e-5)


def test_saved_tagger_keeps_its_decision(tagger, tmp_path):
    tagger.save(tmp_path / "model")
    loaded = Classifier.load(tmp_path / "model")
    assert loaded.task == "multilabel"
    np.testing.assert_allclose(loaded.logits(_waves()), tagger.logits(_waves()), rtol=1e-6)


def test_clip_probabilities_and_predict_rows_of_a_tagger(tagger, tmp_path):
    import soundfile as sf

    from jaxaudio.models.inference import clip_probabilities, predict_files, write_predictions_csv

    waves = list(_waves(2, 5000))
    probs = clip_probabilities(tagger, waves)
    single = clip_probabilities(dataclasses.replace(tagger, task="multiclass"), waves)
    np.testing.assert_allclose(single.sum(1), 1.0, rtol=1e-6)
    # Same mean logits: sigmoid for the tagger, softmax for the classifier.
    logit = np.log(probs / (1 - probs))
    np.testing.assert_allclose(np.exp(logit) / np.exp(logit).sum(1, keepdims=True), single,
                               rtol=1e-4)
    path = tmp_path / "a.wav"
    sf.write(path, waves[0], 16000)
    rows = predict_files(tagger, [path], top=2, progress=False)
    assert rows[0]["tags"] == [n for n, p in zip(tagger.label_names, probs[0]) if p > 0.5]
    text = write_predictions_csv(rows, tmp_path / "p.csv").read_text().splitlines()
    assert text[0].endswith(",tags")


def test_training_a_tagger_uses_binary_cross_entropy(tagger, monkeypatch):
    from jaxaudio.training import losses as losses_lib
    from jaxaudio.training import train as train_lib

    asked = []
    real = losses_lib.get_loss

    def spy(name, **kw):
        asked.append(name)
        return real(name, **kw)

    monkeypatch.setattr(losses_lib, "get_loss", spy)
    targets = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1]], np.float32)
    source = train_lib.ClipExcerpts(waves=list(_waves()), targets=targets,
                                    excerpt_samples=tagger.excerpt_samples)
    config = train_lib.TrainConfig(epochs=1, batch_size=4, stats_excerpts=4)
    result = train_lib.train(tagger, source, config, progress=False)
    assert asked[-1] == "binary_cross_entropy" and result.classifier.task == "multilabel"


def test_cli_train_takes_the_tagger_flag():
    from jaxaudio import cli

    parser = cli.build_parser()
    args = parser.parse_args(["train", "--dataset", "synth-instruments", "--out", "x"])
    assert args.tagger == "single"
    args = parser.parse_args(["train", "--dataset", "synth-instruments", "--out", "x",
                              "--tagger", "multi"])
    assert args.tagger == "multi"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--dataset", "synth-instruments", "--out", "x",
                           "--tagger", "both"])


def test_cli_refuses_a_voice_tagger(tmp_path, capsys):
    from jaxaudio import cli

    code = cli.main(["train", "--dataset", "synth-voice", "--preset", "smoke", "--out",
                     str(tmp_path), "--tagger", "multi"])
    assert code == 2 and "--tagger multi" in capsys.readouterr().err


def test_mixed_clips_carry_both_instruments_in_exact_shares():
    data = make_mixed_instruments(split="test", num_clips=20, seed=1, mixed=0.4,
                                  min_seconds=0.2, max_seconds=0.3)
    tags = data.targets.sum(1)
    assert np.sum(tags == 2) == 8 and np.sum(tags == 1) == 12
    np.testing.assert_array_equal(data.labels == -1, tags == 2)
    other = make_mixed_instruments(split="curated", num_clips=20, seed=1, mixed=0.4,
                                   min_seconds=0.2, max_seconds=0.3)
    assert not np.array_equal(other.waves[0][:100], data.waves[0][:100])
    with pytest.raises(ValueError, match="split"):
        make_mixed_instruments(split="noisy", num_clips=4, seed=0)
    with pytest.raises(ValueError, match="mixed"):
        make_mixed_instruments(split="test", num_clips=4, seed=0, mixed=1.5)


def test_multi_label_synthetic_split_for_train_tagger_multi():
    """`train --tagger multi` on the synthetic data trains on clips where half mix two tagged
    instruments (the single-label curated split would leave a tagger nothing to tag twice)."""
    from jaxaudio.training import tasks

    ds = tasks.load_split("synth-instruments", "train", preset_name="smoke", multi_label=True)
    tags = np.asarray(ds.targets).sum(axis=1)
    assert set(np.unique(tags)) == {1, 2} and abs(np.mean(tags == 2) - 0.5) < 0.1
    single = tasks.load_split("synth-instruments", "train", preset_name="smoke")
    assert np.all(np.asarray(single.targets).sum(axis=1) == 1)
