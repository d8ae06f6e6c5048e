"""Label-noise curves over seeds (jaxaudio.labels.curves): rate checks, per-seed metrics, the
summary, the figure's arrays, timing and sentences, and training + testing on a tiny model."""

import jax
import numpy as np
import pytest

from jaxaudio.data.types import ClipDataset
from jaxaudio.labels import curves
from jaxaudio.metrics import label_noise_summary
from jaxaudio.training.train import TrainConfig

RATES, SEEDS = [0.0, 0.5, 0.9], [3, 4]


def test_rates_must_start_at_zero_and_issue_rates_be_corruption_rates():
    curves.check_rates(RATES, (0.5,))
    curves.check_rates(RATES)
    with pytest.raises(ValueError, match="start at 0"):
        curves.check_rates([0.1, 0.5])
    with pytest.raises(ValueError, match="start at 0"):
        curves.check_rates([])
    with pytest.raises(ValueError, match="non-zero"):
        curves.check_rates(RATES, (0.0,))
    with pytest.raises(ValueError, match="non-zero"):
        curves.check_rates(RATES, (0.3,))


def _runs(robust=("gce",)):
    """Fake trainings named as the module docstring says: one value per rate or one value."""
    runs = {}
    for s in SEEDS:
        rng = np.random.default_rng(s)
        for short in ("ce",) + robust:
            runs[f"curated_{short}_{s}"] = dict(
                {m: np.sort(rng.uniform(0.2, 0.9, 3))[::-1].copy() for m in curves.METRICS},
                num_train=48)
        for cond in curves.CONDITIONS[1:]:
            runs[f"{cond}_ce_{s}"] = dict({m: rng.uniform(0.2, 0.9, 1) for m in curves.METRICS},
                                          num_train=48 if cond == "noisy" else 96)
        changed = np.zeros((3, 10), bool)
        changed[1, :5] = changed[2, :9] = True
        runs[f"corruption_{s}"] = {"changed": changed}
    return runs


def test_per_seed_metrics_stack_seeds_and_rates():
    runs = _runs()
    per_curve, sets = curves.per_seed_metrics(runs, SEEDS, ["ce", "gce"])
    assert set(per_curve) == {"ce", "gce"} and set(sets) == {"noisy", "curated+noisy"}
    assert per_curve["gce"]["lwlrap"].shape == (2, 3) and sets["noisy"]["accuracy"].shape == (2,)
    np.testing.assert_array_equal(per_curve["ce"]["accuracy"][1], runs["curated_ce_4"]["accuracy"])
    assert sets["curated+noisy"]["roc_auc"][0] == runs["curated+noisy_ce_3"]["roc_auc"][0]


def test_summary_is_label_noise_summary_of_the_runs():
    runs = _runs()
    info = {"gce": {"loss_label": "GCE"}}
    out = curves.noise_curves_summary(runs, rates=RATES, seeds=SEEDS, robust=info)
    per_curve, sets = curves.per_seed_metrics(runs, SEEDS, ["ce", "gce"])
    ref = label_noise_summary(RATES, per_curve, sets,
                              num_train={"curated": 48, "noisy": 48, "curated+noisy": 96},
                              labels_changed=np.array([0, 5, 9]),
                              curve_info={"gce": {"loss_label": "GCE"},
                                          "ce": {"loss_label": "cross-entropy"}})
    assert out["curated"].pop("note").startswith("the p = 0")
    assert out["corruption"] == ref["corruption"] and out["curated"] == ref["curated"]
    assert out["noise_equivalent_p"] == ref["noise_equivalent_p"]
    assert out["corruption"]["labels_changed"] == [0, 5, 9]


def test_curve_arrays_hold_every_curve_and_nan_for_never_reached(tmp_path):
    runs = _runs()
    out = curves.noise_curves_summary(runs, rates=RATES, seeds=SEEDS,
                                      robust={"gce": {"loss_label": "GCE"}})
    detail = out["noise_equivalent_p_detail"]
    detail["accuracy"]["noisy"]["mean"] = None
    arrays = curves.curve_arrays(runs, rates=RATES, seeds=SEEDS, robust=["gce"],
                                 noise_equivalent=detail)
    assert arrays["p"].dtype == np.float64 and list(arrays["seeds"]) == SEEDS
    assert arrays["curated_gce_accuracy"].shape == (2, 3) and arrays["noisy_lwlrap"].shape == (2,)
    assert np.isnan(arrays["noise_equivalent_noisy_accuracy"])
    assert len(arrays) == 2 + 3 * (2 + 2 + 2)
    path = curves.save_curve_arrays(tmp_path / "arrays", arrays)
    assert path == tmp_path / "arrays" / "curves.npz"
    assert sorted(p.name for p in (tmp_path / "arrays").iterdir()) == ["curves.npz"]
    with np.load(path) as saved:
        for k, v in arrays.items():
            np.testing.assert_array_equal(saved[k], v)


def test_timing_counts_models_and_reused_ones():
    class Stage(dict):
        """Stands in for a StageResult: outputs by key, ``computed``, ``seconds``."""

        def __init__(self, k, computed, seconds):
            super().__init__(accuracy=[0.5] * k)
            self.computed, self.seconds = computed, seconds

    out = curves.training_timing([Stage(3, True, 2.0), Stage(1, False, 1.0)], mode="shared",
                                 data_seconds=0.5, t_start=0.0)
    assert out["runs"] == 4 and out["runs_reused"] == 1 and out["train_mode"] == "shared"
    assert out["train_and_eval_seconds_of_all_runs"] == 3.0 and "logical CPUs" in out["machine"]


def test_sentences_name_the_numbers():
    runs = _runs()
    results = curves.noise_curves_summary(runs, rates=RATES, seeds=SEEDS,
                                          robust={"gce": {"loss_label": "GCE"}})
    results.update(seeds=SEEDS, preset="smoke")
    text = curves.summary_sentence(results)
    assert text.startswith("Test accuracy falls from") and "p = 0.9" in text
    results["noise_equivalent_p"]["noisy"] = None
    line = curves.headline(results)
    assert "never reached" in line and "(2 seeds, smoke preset)" in line
    assert f"{results['curated']['accuracy_mean']:.3f}" in line


def test_split_labels_records_labels_targets_and_sizes():
    eye = np.eye(2, dtype=np.float32)

    def split(n):
        return ClipDataset(waves=[np.zeros(8, np.float32)] * n, targets=eye[np.arange(n) % 2],
                           labels=(np.arange(n) % 2).astype(np.int32), label_names=("a", "b"),
                           sample_rate=16000, names=tuple(map(str, range(n))))
    out = curves.split_labels({"curated": split(4), "test": split(2)})
    assert out["label_names"] == ["a", "b"] and out["num_clips"] == {"curated": 4, "test": 2}
    assert out["curated_targets"].shape == (4, 2) and list(out["test_labels"]) == [0, 1]


def test_fresh_model_is_seeded():
    clf, config = curves.fresh_model(("a", "b", "c"), seed=2, width=4, excerpt_frames=16,
                                     epochs=3, batch_size=8, learning_rate=1e-3,
                                     stats_excerpts=16)
    again, _ = curves.fresh_model(("a", "b", "c"), seed=2, width=4, excerpt_frames=16, epochs=3,
                                  batch_size=8, learning_rate=1e-3, stats_excerpts=16)
    assert tuple(clf.label_names) == ("a", "b", "c") and clf.excerpt_frames == 16
    assert (config.epochs, config.batch_size, config.seed, config.stats_excerpts) == (3, 8, 2, 16)
    for a, b in zip(jax.tree_util.tree_leaves(clf.variables),
                    jax.tree_util.tree_leaves(again.variables)):
        np.testing.assert_array_equal(a, b)


def test_train_and_test_scores_every_model(tiny_rbg_classifier):
    clf = tiny_rbg_classifier
    t = np.arange(2600) / 16000
    labels = np.arange(16) % 3
    waves = [(0.3 * np.sin(2 * np.pi * (300 + 900 * k) * t)).astype(np.float32) for k in labels]
    eye = np.eye(3, dtype=np.float32)
    test = ClipDataset(waves=waves[:6], targets=eye[labels[:6]], labels=labels[:6].astype(np.int32),
                       label_names=("a", "b", "c"), sample_rate=16000,
                       names=tuple(map(str, range(6))))
    config = TrainConfig(epochs=1, batch_size=8, seed=1, stats_excerpts=16)
    out = curves.train_and_test(clf, config, waves, np.stack([eye[labels], eye[(labels + 1) % 3]]),
                                test, loss=["cross_entropy", {}], loss_set=[("cross_entropy", ())],
                                mode="shared", prng_impl="rbg", progress=False)
    for m in curves.METRICS:
        assert out[m].shape == (2,) and np.all((out[m] >= 0) & (out[m] <= 1))
    assert out["num_train"] == 16 and out["train_loss"].shape[0] == 2 and out["steps"] > 0
