"""Finding the wrong labels and retraining cleaned (jaxaudio.labels.cleaning): scoring per
corruption rate and per noise kind, the cleaning training sets, the gap recovered, the summary,
and the k-fold + retrain drivers on a tiny model."""

import numpy as np
import pytest

from jaxaudio.data.types import ClipDataset
from jaxaudio.dsp import frontend as fe
from jaxaudio.labels import cleaning
from jaxaudio.labels import issues as li
from jaxaudio.training.train import TrainConfig

METRICS = ("accuracy", "lwlrap", "roc_auc")


def test_loss_spec_accepts_mappings_pairs_and_json_lists():
    assert cleaning.loss_spec(("gce", (("q", 0.7),))) == ("gce", (("q", 0.7),))
    assert cleaning.loss_spec(["gce", {"q": 0.7}]) == ("gce", (("q", 0.7),))
    assert cleaning.loss_spec(("x", {"b": 1, "a": 2})) == ("x", (("a", 2), ("b", 1)))
    assert cleaning.loss_spec(("cross_entropy", ())) == ("cross_entropy", ())


def _knowing_probs(true, num_classes, rng):
    probs = rng.uniform(0, 0.2, (len(true), num_classes))
    probs[np.arange(len(true)), true] = 0.8
    return probs / probs.sum(1, keepdims=True)


def test_corrupted_labels_are_scored_per_rate_against_the_masks():
    rng = np.random.default_rng(0)
    true = np.arange(90) % 3
    labels, changed = [], []
    for share in (0.1, 0.3):
        wrong = np.zeros(90, bool)
        wrong[rng.choice(90, int(share * 90), replace=False)] = True
        labels.append(np.where(wrong, (true + 1 + rng.integers(0, 2, 90)) % 3, true))
        changed.append(wrong)
    labels, changed = np.stack(labels), np.stack(changed)
    probs = np.stack([_knowing_probs(true, 3, rng)] * 2)
    out = cleaning.score_corrupted_labels(labels, probs, changed)
    assert out["flagged"].shape == out["quality"].shape == (2, 90) and len(out["per_rate"]) == 2
    for k in range(2):
        found = li.find_issues(labels[k], probs[k])
        np.testing.assert_array_equal(out["flagged"][k], found["flagged"])
        assert out["per_rate"][k] == li.detection_scores(found["flagged"], found["quality"],
                                                         changed[k])
        assert out["per_rate"][k]["num_wrong"] == changed[k].sum()
        assert out["per_rate"][k]["recall"] > 0.8 and out["per_rate"][k]["roc_auc"] > 0.95


def test_noisy_split_flags_single_label_clips_only_with_the_single_filter():
    rng = np.random.default_rng(1)
    n, c = 60, 3
    true = np.arange(n) % c
    targets = np.eye(c, dtype=np.float32)[true]
    targets[::5, (true[::5] + 1) % c] = 1  # every fifth clip: two given tags
    labels = np.where(targets.sum(1) == 1, true, -1)
    flipped = np.arange(1, n, 7)  # a few single-tag clips with a wrong given label
    labels[flipped] = (true[flipped] + 1) % c
    soft = _knowing_probs(true, c, rng)
    tag = np.clip(np.eye(c)[true] * 0.8 + rng.uniform(0.05, 0.15, (n, c)), 0, 1)
    out = cleaning.flag_noisy_split(labels, targets, soft, tag)
    flags, quality = out["flags"], out["quality"]
    assert set(flags) == set(quality) == set(cleaning.FILTERS)
    multi = labels < 0
    assert not flags["single"][multi].any() and np.all(quality["single"][multi] == 1)
    np.testing.assert_array_equal(flags["either"], flags["single"] | flags["multi"])
    np.testing.assert_array_equal(quality["either"],
                                  np.minimum(quality["single"], quality["multi"]))
    assert flags["single"][flipped].mean() > 0.8


def test_noise_kinds_are_scored_by_hand():
    flags = {"single": np.array([1, 0, 1, 0, 0], bool), "multi": np.array([0, 0, 1, 1, 0], bool)}
    quality = {"single": np.array([0.1, 0.9, 0.2, 0.8, 0.7]),
               "multi": np.array([0.5, 0.9, 0.1, 0.2, 0.6])}
    kind = np.array([0, 0, 1, 2, 2])
    out = cleaning.score_noise_kinds(flags, quality, kind, ("clean", "wrong", "missing", "oov"))
    assert out["per_kind"]["clean"] == {"single": 0.5, "multi": 0.0, "num_clips": 2}
    assert out["per_kind"]["missing"] == {"single": 0.0, "multi": 0.5, "num_clips": 2}
    assert out["per_kind"]["oov"] == {"single": None, "multi": None, "num_clips": 0}
    assert out["vs_truth"]["multi"] == li.detection_scores(flags["multi"], quality["multi"],
                                                           kind > 0)
    assert out["vs_truth"]["multi"]["precision"] == 1.0


def test_cleaning_training_sets_drop_and_relabel_only_the_flagged_clips():
    eye = np.eye(3, dtype=np.float32)
    cur_w = [np.full(4, i, np.float32) for i in range(2)]
    noisy_w = [np.full(4, 10 + i, np.float32) for i in range(4)]
    given = eye[[0, 1, 2, 0]]
    flagged = np.array([False, True, False, True])
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6], [0.1, 0.7, 0.2]])
    gce = ("gce", (("q", 0.7),))
    sets = cleaning.cleaning_training_sets(cur_w, eye[[1, 2]], noisy_w, given, flagged, probs,
                                           loss=("cross_entropy", ()), robust={"gce": gce})
    by_name = {name: (waves, models) for name, waves, models in sets}
    assert list(by_name) == ["noisy", "noisy dropped", "curated+noisy", "curated+noisy dropped"]
    waves, models = by_name["noisy"]
    assert [m[0] for m in models] == ["noisy", "noisy gce", "noisy relabelled"]
    assert models[1][2] == gce and len(waves) == 4
    np.testing.assert_array_equal(models[2][1].argmax(1), [0, 2, 2, 1])
    waves, models = by_name["noisy dropped"]
    assert [w[0] for w in waves] == [10, 12]
    np.testing.assert_array_equal(models[0][1], given[[0, 2]])
    waves, models = by_name["curated+noisy dropped"]
    assert [w[0] for w in waves] == [0, 1, 10, 12] and models[0][1].shape == (4, 3)
    waves, models = by_name["curated+noisy"]
    np.testing.assert_array_equal(models[1][1][:2], eye[[1, 2]])
    assert len(waves) == 6 and models[1][0] == "curated+noisy relabelled"


def test_gap_recovered_by_hand():
    test = {"noisy": {"accuracy": 0.5}, "curated": {"accuracy": 0.9},
            "noisy dropped": {"accuracy": 0.7}, "noisy relabelled": {"accuracy": None}}
    gap = cleaning.gap_recovered(test, metrics=["accuracy"])
    assert gap["accuracy"]["noisy dropped"] == pytest.approx(0.5)
    assert gap["accuracy"]["noisy relabelled"] is None and set(gap["accuracy"]) == {
        "noisy dropped", "noisy relabelled"}
    flat = dict(test, curated={"accuracy": 0.5})
    assert cleaning.gap_recovered(flat, metrics=["accuracy"])["accuracy"]["noisy dropped"] is None


def test_label_issues_summary_carries_the_truth_only_when_known():
    curated = {"per_rate": [{"recall": 1.0}], "train_seconds": 2.0}
    noisy = {"share_flagged": {"either": 0.2}, "train_seconds": 3.0}
    test = {m: 0.5 for m in METRICS}
    cleaned = {"test": {"noisy": test, "noisy dropped": dict(test, accuracy=0.7)},
               "train_seconds": 4.0}
    kw = {"folds": 4, "issue_rates": (0.5,), "curated_test": {m: 0.9 for m in METRICS},
          "num_dropped": 3, "metrics": METRICS, "kind_names": ("clean", "wrong")}
    out = cleaning.label_issues_summary(curated, noisy, cleaned, **kw)
    assert out["rates"] == [0.5] and out["folds"] == 4 and out["num_dropped"] == 3
    assert out["retrained"]["curated"]["accuracy"] == 0.9
    assert out["gap_recovered"]["accuracy"]["noisy dropped"] == pytest.approx(0.5)
    assert out["seconds"] == {"curated_kfold": 2.0, "noisy_kfold": 3.0, "retrain": 4.0}
    assert "noisy_per_kind" not in out
    truth = dict(noisy, vs_truth={"single": {}}, per_kind={"clean": {}})
    out = cleaning.label_issues_summary(curated, truth, cleaned, **kw)
    assert out["noise_kinds"] == ["clean", "wrong"] and out["noisy_per_kind"] == {"clean": {}}


# ------------------------------------------------------------------ drivers on a tiny model
FRONTEND = fe.FrontendConfig(n_fft=256, hop_length=128, n_mels=16)


@pytest.fixture(scope="module")
def tiny(tiny_rbg_classifier):
    clf = tiny_rbg_classifier
    t = np.arange(2600) / 16000
    labels = np.arange(24) % 3
    waves = [(0.3 * np.sin(2 * np.pi * (300 + 900 * k) * t) * (1 + 0.01 * i)).astype(np.float32)
             for i, k in enumerate(labels)]
    test = ClipDataset(waves=waves[:9], targets=np.eye(3, dtype=np.float32)[labels[:9]],
                       labels=labels[:9].astype(np.int32), label_names=("a", "b", "c"),
                       sample_rate=16000, names=tuple(str(i) for i in range(9)))
    config = TrainConfig(epochs=1, batch_size=8, seed=3, stats_excerpts=24)
    return clf, config, waves, labels, test


LOSSES = [("cross_entropy", ()), ("binary_cross_entropy", ())]


def test_corrupted_and_noisy_drivers_return_the_documented_fields(tiny):
    clf, config, waves, labels, _ = tiny
    changed = np.zeros((1, 24), bool)
    changed[0, :4] = True
    corrupted = np.where(changed, (labels + 1) % 3, labels)
    out = cleaning.find_corrupted_labels(clf, config, waves, corrupted, changed, folds=2, seed=0,
                                         loss=LOSSES[0], loss_set=LOSSES, mode="shared",
                                         prng_impl="rbg", progress=False)
    assert out["probabilities"].shape == (1, 24, 3) and out["flagged"].shape == (1, 24)
    assert out["per_rate"][0]["num_wrong"] == 4 and out["train_seconds"] > 0
    targets = np.eye(3, dtype=np.float32)[labels]
    kind = (np.arange(24) % 6 == 0).astype(int)
    noisy = cleaning.find_noisy_labels(clf, config, waves, labels, targets, folds=2, seed=0,
                                       single_loss=LOSSES[0], multi_loss=LOSSES[1],
                                       loss_set=LOSSES, kind=kind, kind_names=("clean", "wrong"),
                                       mode="shared", prng_impl="rbg", progress=False)
    assert noisy["probabilities"].shape == noisy["tag_probabilities"].shape == (24, 3)
    np.testing.assert_allclose(noisy["probabilities"].sum(1), 1.0, rtol=1e-6)
    assert set(noisy["share_flagged"]) == set(cleaning.FILTERS)
    assert noisy["per_kind"]["wrong"]["num_clips"] == 4 and "vs_truth" in noisy
    assert "per_kind" not in cleaning.find_noisy_labels(
        clf, config, waves, labels, targets, folds=2, seed=0, single_loss=LOSSES[0],
        multi_loss=LOSSES[1], loss_set=LOSSES, mode="shared", prng_impl="rbg", progress=False)


def test_retraining_skips_sets_too_small_to_train(tiny):
    clf, config, waves, labels, test = tiny
    targets = np.eye(3, dtype=np.float32)[labels]
    gce = ("gce", {"q": 0.7})
    sets = [("all", waves, [("all", targets, LOSSES[0]), ("all gce", targets, gce)]),
            ("few", waves[:3], [("few", targets[:3], LOSSES[0])])]
    out = cleaning.train_and_evaluate_sets(clf, config, sets, test, metrics=METRICS,
                                           loss_set=LOSSES + [("gce", (("q", 0.7),))],
                                           mode="shared", prng_impl="rbg", progress=False)
    assert list(out["test"]) == ["all", "all gce", "few"]
    assert out["test"]["all"]["num_train"] == 24 and 0 <= out["test"]["all"]["accuracy"] <= 1
    assert out["test"]["few"] == {"accuracy": None, "lwlrap": None, "roc_auc": None,
                                  "num_train": 3, "note": "too few clips left to train"}
    assert out["train_seconds"] > 0
