"""Named tasks: the label-noise task's splits, corrupted labels, training sets, classifier,
and the chunked clip evaluation."""

import numpy as np
import pytest

from jaxaudio.training import tasks
from jaxaudio.models import inference
from jaxaudio.labels import noise as noise_sets

SIZES = {"num_curated": 12, "num_noisy": 8, "num_test": 6, "min_seconds": 0.2,
         "max_seconds": 0.4}


@pytest.fixture(scope="module")
def splits():
    return tasks.instrument_splits(**SIZES, seed=3, progress=False)


@pytest.fixture(scope="module")
def classifier(splits):
    return tasks.new_instrument_classifier_rbg(width=4, excerpt_frames=8, seed=0,
                                               label_names=splits["curated"].label_names)


def test_synthetic_splits_have_the_requested_sizes_and_are_seeded(splits):
    assert {k: len(v) for k, v in splits.items()} == {"curated": 12, "noisy": 8, "test": 6}
    for d in splits.values():
        assert d.sample_rate == 16000 and len(d.label_names) == 12
        assert all(0.2 * 16000 - 1 <= len(w) <= 0.4 * 16000 + 1 for w in d.waves)
    again = tasks.instrument_splits(**SIZES, seed=3, progress=False)
    np.testing.assert_array_equal(again["noisy"].waves[0], splits["noisy"].waves[0])
    other = tasks.instrument_splits(**SIZES, seed=4, progress=False)
    assert not np.array_equal(other["curated"].waves[0], splits["curated"].waves[0])


def test_splits_from_a_missing_folder_name_the_flag(tmp_path):
    with pytest.raises(ValueError, match="--data"):
        tasks.instrument_splits(**SIZES, data=str(tmp_path / "missing"))


def test_corruption_at_rates_changes_exactly_round_p_n_labels():
    labels = np.arange(40) % 4
    rates = [0.0, 0.25, 0.5, 1.0]
    new, changed = noise_sets.corrupt_at_rates(labels, rates=rates, num_classes=4, seed=1)
    assert new.shape == changed.shape == (4, 40)
    assert changed.sum(1).tolist() == [0, 10, 20, 40]
    np.testing.assert_array_equal(new != labels[None], changed)
    np.testing.assert_array_equal(new[0], labels)
    again, _ = noise_sets.corrupt_at_rates(labels, rates=rates, num_classes=4, seed=1)
    other, _ = noise_sets.corrupt_at_rates(labels, rates=rates, num_classes=4, seed=2)
    np.testing.assert_array_equal(again, new)
    assert not np.array_equal(other[1:], new[1:])
    # A rate's corruption does not depend on the other rates asked for.
    alone, _ = noise_sets.corrupt_at_rates(labels, rates=[0.5], num_classes=4, seed=1)
    np.testing.assert_array_equal(alone[0], new[2])


def test_noise_training_sets(splits):
    corrupted = np.stack([splits["curated"].labels, (splits["curated"].labels + 1) % 12])
    waves, targets = noise_sets.noise_training_set(splits, "curated", corrupted=corrupted)
    assert len(waves) == 12 and targets.shape == (2, 12, 12) and targets.dtype == np.float32
    np.testing.assert_array_equal(targets.argmax(-1), corrupted)
    waves, targets = noise_sets.noise_training_set(splits, "curated+noisy")
    assert len(waves) == 20 and targets.shape == (1, 20, 12)
    np.testing.assert_array_equal(targets[0, 12:], splits["noisy"].targets)
    np.testing.assert_array_equal(waves[12], splits["noisy"].waves[0])
    waves, targets = noise_sets.noise_training_set(splits, "noisy")
    assert len(waves) == 8 and targets.shape == (1, 8, 12)
    with pytest.raises(ValueError, match="training set"):
        noise_sets.noise_training_set(splits, "test")


def test_rbg_classifier_is_seeded(classifier, splits):
    import jax

    same = tasks.new_instrument_classifier_rbg(width=4, excerpt_frames=8, seed=0,
                                               label_names=splits["curated"].label_names)
    other = tasks.new_instrument_classifier_rbg(width=4, excerpt_frames=8, seed=1,
                                                label_names=splits["curated"].label_names)
    a, b, c = (jax.tree_util.tree_leaves(x.variables) for x in (classifier, same, other))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert classifier.excerpt_frames == 8 and classifier.model_kwargs["width"] == 4


def test_clip_scores_do_not_depend_on_the_chunk_size(classifier, splits):
    test = splits["test"]
    one = inference.clip_scores(classifier, test, batch_size=1)
    padded = inference.clip_scores(classifier, test, batch_size=5)  # last chunk padded
    assert one.shape == (6, 12)
    np.testing.assert_allclose(one.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(padded, one, rtol=1e-4, atol=1e-6)
    scores = inference.evaluate_clips(classifier, test, batch_size=5)
    assert 0.0 <= scores["accuracy"] <= 1.0 and scores["num_clips"] == 6


def test_real_data_loader_takes_single_label_instrument_clips(tmp_path):
    """``--data``: the 12-label single-label clips of FSDKaggle2019's three sets, capped."""
    import csv

    import soundfile as sf

    from jaxaudio.data.types import INSTRUMENT_LABELS

    splits = {
        "curated": ("train_curated_post_competition.csv", "FSDKaggle2019.audio_train_curated",
                    [("a.wav", "Accordion"), ("b.wav", "Bass_guitar,Strum"), ("c.wav", "Bark"),
                     ("d.wav", "Gong"), ("e.wav", "Hi-hat")]),
        "noisy": ("train_noisy_post_competition.csv", "FSDKaggle2019.audio_train_noisy",
                  [("n1.wav", "Marimba_and_xylophone"), ("n2.wav", "Male_singing,Gong")]),
        "test": ("test_post_competition.csv", "FSDKaggle2019.audio_test",
                 [("t1.wav", "Harmonica"), ("t2.wav", "Writing")]),
    }
    t = np.arange(8820) / 44100
    for csv_name, audio_name, rows in splits.values():
        (tmp_path / "FSDKaggle2019.meta").mkdir(exist_ok=True)
        (tmp_path / audio_name).mkdir()
        with open(tmp_path / "FSDKaggle2019.meta" / csv_name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["fname", "labels"])
            for i, (fname, labels) in enumerate(rows):
                writer.writerow([fname, labels])
                sf.write(tmp_path / audio_name / fname, 0.5 * np.sin(2 * np.pi * 300 * t),
                         44100, subtype="PCM_16")
    data = tasks.instrument_splits(**dict(SIZES, num_curated=2), data=str(tmp_path),
                                   progress=False)
    assert data["curated"].names == ("a.wav", "d.wav")  # capped at 2, CSV order
    assert data["noisy"].names == ("n1.wav",) and data["test"].names == ("t1.wav",)
    for split in data.values():
        assert split.label_names == INSTRUMENT_LABELS and split.sample_rate == 16000
        assert np.all(split.labels >= 0)


def test_voice_presets_train_as_published_and_differ_only_in_sizes():
    paper = tasks.preset("voice", "paper")
    assert (paper.epochs, paper.examples_per_epoch // paper.batch_size, paper.batch_size,
            paper.excerpt_frames) == (20, 2000, 32, 115)
    assert (paper.learning_rate, paper.lr_decay_per_epoch) == (1e-3, 0.85)
    config = tasks.train_config("voice", paper, seed=0)
    assert (config.epochs, config.batch_size, config.learning_rate,
            config.lr_decay_per_epoch) == (20, 32, 1e-3, 0.85)
    method = ("batch_size", "learning_rate", "lr_decay_per_epoch", "excerpt_frames")
    for name in ("smoke", "demo"):
        p = tasks.preset("voice", name)
        assert {k: getattr(p, k) for k in method} == {k: getattr(paper, k) for k in method}
        assert p.examples_per_epoch % p.batch_size == 0
    assert tasks.preset("voice", "demo").epochs == 20  # demo shrinks only batches per epoch
    # the instrument classifiers keep their constant step size
    assert all(tasks.preset("instruments", n).lr_decay_per_epoch == 1.0 for n in tasks.PRESETS)


def test_frame_errors_decide_at_the_published_threshold_and_median_filter():
    assert inference.VOICE_THRESHOLD == 0.51
    probs = [np.array([0.505, 0.505, 0.9, 0.9]), np.array([0.52, 0.1, 0.52])]
    labels = [np.array([0, 0, 1, 1]), np.array([1, 1, 1])]
    out = inference.frame_errors(probs, labels, frames_per_second=1.0, median_seconds=0)
    # 0.505 is "nosing" at 0.51 (it would be "sing" at 0.5); the 0.1 frame is the one error
    assert out["accuracy"] == pytest.approx(6 / 7) and out["error"] == pytest.approx(1 / 7)
    assert out["threshold"] == 0.51 and "error_median_filtered" not in out
    at_half = inference.frame_errors(probs, labels, frames_per_second=1.0, median_seconds=0,
                                 threshold=0.5)
    assert at_half["error"] == pytest.approx(3 / 7)
    # a 3-frame median turns the isolated 0.1 into 0.52 (song 2); song 1 stays right
    smooth = inference.frame_errors(probs, labels, frames_per_second=1.0, median_seconds=3.0)
    assert smooth["error_median_filtered"] == pytest.approx(0.0)
    assert smooth["accuracy_median_filtered"] == pytest.approx(1.0)


def test_linear_voice_baseline_scores_like_the_detector():
    from jaxaudio.training.baselines import voice_linear_baseline
    from jaxaudio.data.types import SongDataset

    sr = 22050

    def song(seed):  # a loud 1 kHz tone where "singing", quiet noise elsewhere
        t = np.arange(4 * sr) / sr
        wave = 0.01 * np.random.default_rng(seed).standard_normal(len(t))
        sing = (t >= 1.0) & (t < 2.5)
        wave[sing] += 0.5 * np.sin(2 * np.pi * 1000 * t[sing])
        return wave.astype(np.float32)

    data = SongDataset(waves=[song(0), song(1)], segments=[np.array([[1.0, 2.5]])] * 2,
                       sample_rate=sr, names=("a", "b"))
    out = voice_linear_baseline(data, data, frame_step=2)
    assert out["threshold"] == 0.51 and out["median_filter_seconds"] == 0.8
    assert out["error"] < 0.05 and 0.0 <= out["error_median_filtered"] < 0.05
    assert out["error"] == pytest.approx(1 - out["accuracy"])
