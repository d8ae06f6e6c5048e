"""Finding the wrong labels: folds, cleanlab's filters, scores, cleaning; the noisy split with
kinds of label noise and its truth."""

import numpy as np
import pytest

from jaxaudio.dsp import frontend as fe
from jaxaudio.labels import issues as li
from jaxaudio.data.synth_instruments import NOISE_KINDS, make_noisy_instruments
from jaxaudio.training.train import TrainConfig


def test_folds_are_balanced_seeded_and_validated():
    fold = li.fold_assignment(23, folds=4, seed=1)
    assert sorted(np.bincount(fold)) == [5, 6, 6, 6]
    np.testing.assert_array_equal(fold, li.fold_assignment(23, folds=4, seed=1))
    assert not np.array_equal(fold, li.fold_assignment(23, folds=4, seed=2))
    with pytest.raises(ValueError, match="--folds"):
        li.fold_assignment(10, folds=1, seed=0)
    with pytest.raises(ValueError, match="at least 4 clips"):
        li.fold_assignment(3, folds=4, seed=0)


def _confident_probs(true, given, num_classes, rng):
    """Out-of-sample-like probabilities that know the true class (0.8) of each clip."""
    probs = rng.uniform(0, 0.2, (len(true), num_classes))
    probs[np.arange(len(true)), true] = 0.8
    return probs / probs.sum(1, keepdims=True)


def test_single_label_filter_finds_the_flipped_labels_and_scores_them():
    rng = np.random.default_rng(0)
    true = np.arange(120) % 4
    given = true.copy()
    wrong = np.zeros(120, bool)
    wrong[rng.choice(120, 24, replace=False)] = True
    given[wrong] = (true[wrong] + 1 + rng.integers(0, 3, wrong.sum())) % 4
    found = li.find_issues(given, _confident_probs(true, given, 4, rng))
    s = li.detection_scores(found["flagged"], found["quality"], wrong)
    assert s["precision"] > 0.9 and s["recall"] > 0.9 and s["roc_auc"] > 0.95
    assert s["num_wrong"] == 24 and s["num_clips"] == 120
    # Probabilities that know nothing give no better than chance ranking.
    blind = li.find_issues(given, np.full((120, 4), 0.25) + rng.uniform(0, 1e-3, (120, 4)))
    assert li.detection_scores(blind["flagged"], blind["quality"], wrong)["roc_auc"] < 0.75


def test_detection_scores_by_hand():
    flagged = np.array([1, 1, 0, 0, 1], bool)
    truth = np.array([1, 0, 1, 0, 0], bool)
    quality = np.array([0.1, 0.2, 0.3, 0.9, 0.4])
    s = li.detection_scores(flagged, quality, truth)
    assert s["precision"] == pytest.approx(1 / 3) and s["recall"] == pytest.approx(1 / 2)
    # Wrong clips have quality 0.1 and 0.3, correct ones 0.2, 0.4, 0.9: of the 6 (wrong,
    # correct) pairs the wrong clip is lower in 5.
    assert s["roc_auc"] == pytest.approx(5 / 6)
    none = li.detection_scores(np.zeros(3, bool), np.ones(3), np.zeros(3, bool))
    assert none["precision"] is None and none["recall"] is None and none["roc_auc"] is None
    with pytest.raises(ValueError, match="one length"):
        li.detection_scores(flagged, quality[:3], truth)


def test_multilabel_filter_flags_missing_and_extra_tags():
    rng = np.random.default_rng(1)
    n, c = 150, 5
    true = np.zeros((n, c), np.float32)
    true[np.arange(n), np.arange(n) % c] = 1
    true[np.arange(0, n, 3), (np.arange(0, n, 3) + 2) % c] = 1  # a third of the clips: 2 tags
    given = true.copy()
    missing, extra = np.arange(0, 30, 3), np.arange(31, 61, 3)  # clips with 2 tags; 1 tag
    given[missing, (missing + 2) % c] = 0
    given[extra, (extra + 1) % c] = 1
    probs = np.clip(true * 0.85 + rng.uniform(0.02, 0.12, true.shape), 0, 1)
    found = li.find_multilabel_issues(given, probs)
    bad = np.zeros(n, bool)
    bad[missing] = bad[extra] = True
    s = li.detection_scores(found["flagged"], found["quality"], bad)
    assert s["recall"] >= 0.75 and s["precision"] >= 0.8 and s["roc_auc"] > 0.95


def test_cleaning_drops_or_relabels_only_the_flagged_clips():
    targets = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    flagged = np.array([False, True, False, True])
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6], [0.1, 0.7, 0.2]])
    keep, kept = li.cleaned_targets(targets, flagged, probs, how="drop")
    np.testing.assert_array_equal(keep, [0, 2])
    np.testing.assert_array_equal(kept, targets[[0, 2]])
    keep, relabelled = li.cleaned_targets(targets, flagged, probs, how="relabel")
    np.testing.assert_array_equal(keep, np.arange(4))
    np.testing.assert_array_equal(relabelled.argmax(1), [0, 2, 2, 1])
    with pytest.raises(ValueError, match="drop"):
        li.cleaned_targets(targets, flagged, probs, how="fix")


# ------------------------------------------------------------------ k-fold on a tiny model
FRONTEND = fe.FrontendConfig(n_fft=256, hop_length=128, n_mels=16)


@pytest.fixture(scope="module")
def tiny(tiny_rbg_classifier):
    clf = tiny_rbg_classifier
    t = np.arange(2600) / 16000
    waves = [(0.3 * np.sin(2 * np.pi * (300 + 900 * (i % 3)) * t) * (1 + 0.01 * i)
              ).astype(np.float32) for i in range(24)]
    return clf, waves, np.eye(3, dtype=np.float32)[np.arange(24) % 3]


def test_out_of_fold_scores_come_from_models_that_never_saw_the_clip(tiny, monkeypatch):
    import jaxaudio.training.many as tm

    clf, waves, targets = tiny
    seen = []
    real = tm.train_many

    def spy(classifier, train_waves, *args, **kwargs):
        seen.append({id(w) for w in train_waves})
        return real(classifier, train_waves, *args, **kwargs)

    monkeypatch.setattr(tm, "train_many", spy)
    monkeypatch.setattr(li, "train_many", spy, raising=False)  # imported into the module
    config = TrainConfig(epochs=1, batch_size=8, seed=3, stats_excerpts=24)
    out = li.out_of_fold_probabilities(
        clf, waves, np.stack([targets, targets]), config, folds=3, seed=0,
        losses=[("cross_entropy", ()), ("binary_cross_entropy", ())],
        activations=["softmax", "sigmoid"], mode="shared", prng_impl="rbg", progress=False)
    probs, fold = out["probabilities"], out["fold"]
    assert probs.shape == (2, 24, 3) and len(seen) == 3
    for f, ids in enumerate(seen):
        held = {id(waves[i]) for i in np.flatnonzero(fold == f)}
        assert ids.isdisjoint(held) and len(ids) + len(held) == 24
    np.testing.assert_allclose(probs[0].sum(1), 1.0, rtol=1e-6)
    assert np.all((probs[1] > 0) & (probs[1] < 1)) and not np.allclose(probs[1].sum(1), 1.0)
    with pytest.raises(ValueError, match="one entry per label set"):
        li.out_of_fold_probabilities(clf, waves, targets[None], config, folds=3, seed=0,
                                     losses=[], activations=["softmax"])


# ------------------------------------------------------------------ noisy split with kinds
@pytest.fixture(scope="module")
def kinds_split():
    return make_noisy_instruments(num_clips=40, seed=3, min_seconds=0.2, max_seconds=0.4)


def test_noisy_split_has_each_kind_in_exact_shares_with_its_truth(kinds_split):
    data, truth = kinds_split
    kind = truth["kind"]
    counts = {name: int(np.sum(kind == k)) for k, name in enumerate(NOISE_KINDS)}
    assert counts == {"clean": 24, "wrong": 6, "missing": 4, "extra": 4, "out_of_vocabulary": 2}
    given, true = data.targets, truth["true_targets"]
    for k, name in enumerate(NOISE_KINDS):
        rows = kind == k
        if name == "clean":
            np.testing.assert_array_equal(given[rows], true[rows])
        elif name == "wrong":
            assert np.all(given[rows].sum(1) == 1) and np.all(true[rows].sum(1) == 1)
            assert np.all((given[rows] * true[rows]).sum(1) == 0)
        elif name == "missing":  # two play, one labelled, and it is one that plays
            assert np.all(true[rows].sum(1) == 2) and np.all(given[rows].sum(1) == 1)
            assert np.all((given[rows] * true[rows]).sum(1) == 1)
        elif name == "extra":  # one plays, two labelled, one of them right
            assert np.all(true[rows].sum(1) == 1) and np.all(given[rows].sum(1) == 2)
            assert np.all(data.labels[rows] == -1)
        else:
            assert np.all(true[rows].sum(1) == 0) and np.all(truth["true_labels"][rows] == -1)
    assert all(np.all(np.abs(w) <= 1) and w.dtype == np.float32 for w in data.waves)


def test_noisy_split_is_seeded_and_validated(kinds_split):
    data, truth = kinds_split
    again, truth2 = make_noisy_instruments(num_clips=40, seed=3, min_seconds=0.2,
                                           max_seconds=0.4)
    np.testing.assert_array_equal(again.waves[5], data.waves[5])
    np.testing.assert_array_equal(truth2["kind"], truth["kind"])
    clean, t = make_noisy_instruments(num_clips=12, seed=0, min_seconds=0.2, max_seconds=0.3,
                                      kinds={})
    assert np.all(t["kind"] == 0)
    np.testing.assert_array_equal(clean.targets, t["true_targets"])
    with pytest.raises(ValueError, match="unknown noise kinds"):
        make_noisy_instruments(num_clips=4, seed=0, kinds={"typo": 0.1})
    with pytest.raises(ValueError, match="sum to at most 1"):
        make_noisy_instruments(num_clips=4, seed=0, kinds={"wrong": 0.7, "extra": 0.5})
    with pytest.raises(ValueError, match="num_clips"):
        make_noisy_instruments(num_clips=0, seed=0)
