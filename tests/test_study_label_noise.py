"""Label-noise study: training many models, the smoke run, its per-stage reuse."""

import json

import jax
import numpy as np
import pytest
from conftest import sine_clips

from jaxaudio.dsp import frontend as fe

from jaxaudio.studies import label_noise as ln
from jaxaudio.training.train import TrainConfig
from jaxaudio.training.many import evaluate_many, train_many

# ------------------------------------------------------------------ training many models

FRONTEND = fe.FrontendConfig(n_fft=256, hop_length=128, n_mels=16)


@pytest.fixture(scope="module")
def tiny_problem(tiny_rbg_classifier):
    clf = tiny_rbg_classifier  # jitted init from an rbg key (conftest)
    waves, labels = sine_clips(2600)
    eye = np.eye(3, dtype=np.float32)
    targets = np.stack([eye[labels], eye[(labels + 1) % 3], eye[labels]])
    losses = [("cross_entropy", ()), ("cross_entropy", ()), ("gce", (("q", 0.7),))]
    return clf, waves, targets, losses


def _leaves(tree):
    return jax.tree_util.tree_leaves(jax.device_get(tree))


def test_vmapped_training_equals_training_each_model_alone(tiny_problem):
    clf, waves, targets, losses = tiny_problem
    config = TrainConfig(epochs=2, batch_size=8, seed=5, stats_excerpts=24)
    together = train_many(clf, waves, targets, config, losses=losses, mode="vmap",
                          loss_set=losses, prng_impl="rbg", progress=False)
    shared = train_many(clf, waves, targets, config, losses=losses, mode="shared",
                        loss_set=losses, prng_impl="rbg", progress=False)
    for k in range(len(targets)):
        alone = train_many(clf, waves, targets[k:k + 1], config, losses=losses[k:k + 1],
                           mode="sequential", loss_set=losses, prng_impl="rbg",
                           progress=False)
        # vmap batches the convolutions differently (grouped), so sums are reassociated; Adam
        # divides by sqrt(v), which turns float32 rounding in tiny gradients into up to a
        # fraction of one step (lr = 1e-3). 1e-4 = a tenth of a step after 6 steps.
        for a, b, c in zip(_leaves(alone.classifiers[0].variables),
                           _leaves(together.classifiers[k].variables),
                           _leaves(shared.classifiers[k].variables)):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(c, a, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(together.losses[k], alone.losses[0], rtol=1e-4)
    # Different labels give different models (the stacking really is per model).
    assert not np.allclose(_leaves(together.variables)[0][0], _leaves(together.variables)[0][1])
    # Same seed, same result.
    again = train_many(clf, waves, targets, config, losses=losses, mode="vmap",
                       loss_set=losses, prng_impl="rbg", progress=False)
    for a, b in zip(_leaves(together.variables), _leaves(again.variables)):
        np.testing.assert_array_equal(a, b)


def test_evaluate_many_matches_the_single_model_evaluation(tiny_problem):
    from jaxaudio.models import inference
    from jaxaudio.data.types import ClipDataset

    clf, waves, targets, losses = tiny_problem
    config = TrainConfig(epochs=1, batch_size=8, seed=5, stats_excerpts=24)
    res = train_many(clf, waves, targets[:2], config, losses=losses[:2], mode="shared",
                     loss_set=losses, prng_impl="rbg", progress=False)
    labels = np.arange(len(waves)) % 3
    data = ClipDataset(waves=waves, targets=np.eye(3, dtype=np.float32)[labels],
                       labels=labels.astype(np.int32), label_names=("a", "b", "c"),
                       sample_rate=16000, names=tuple(str(i) for i in range(len(waves))))
    many = evaluate_many(res.classifiers[0], res.variables, data, batch_size=8)
    one = inference.evaluate_clips(res.classifiers[1], data, batch_size=8)
    for m in ("accuracy", "lwlrap", "roc_auc"):
        assert many[1][m] == pytest.approx(one[m], abs=1e-5)


def test_train_many_rejects_bad_input(tiny_problem):
    clf, waves, targets, losses = tiny_problem
    config = TrainConfig(epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="targets must have shape"):
        train_many(clf, waves, targets[0], config)
    with pytest.raises(ValueError, match="mode"):
        train_many(clf, waves, targets, config, mode="parallel")
    with pytest.raises(ValueError, match="one entry per model"):
        train_many(clf, waves, targets, config, losses=losses[:1])
    with pytest.raises(ValueError, match="unknown loss"):
        train_many(clf, waves, targets, config, losses=[("nope", ())] * 3)


# ------------------------------------------------------------------ the study (smoke)


def test_evaluate_many_vmapped_equals_each_model_alone(tiny_problem):
    from jaxaudio.data.types import ClipDataset
    from jaxaudio.training.many import stack_trees, unstack_tree

    clf, waves, targets, losses = tiny_problem
    config = TrainConfig(epochs=1, batch_size=8, seed=5, stats_excerpts=24)
    res = train_many(clf, waves, targets, config, losses=losses, mode="shared",
                     loss_set=losses, prng_impl="rbg", progress=False)
    labels = np.arange(len(waves)) % 3
    data = ClipDataset(waves=waves[:10], targets=np.eye(3, dtype=np.float32)[labels[:10]],
                       labels=labels[:10].astype(np.int32), label_names=("a", "b", "c"),
                       sample_rate=16000, names=tuple(str(i) for i in range(10)))
    many = evaluate_many(res.classifiers[0], res.variables, data, batch_size=4)
    for k in range(len(targets)):
        one = evaluate_many(res.classifiers[0], stack_trees([unstack_tree(res.variables, k)]),
                            data, batch_size=4)[0]
        for m in ("accuracy", "lwlrap", "roc_auc"):
            assert many[k][m] == pytest.approx(one[m], abs=1e-6)


def test_default_train_mode_follows_the_backend():
    from jaxaudio.training.many import TRAIN_MODES, default_train_mode

    assert default_train_mode("cpu") == "shared"
    assert default_train_mode("gpu") == default_train_mode("tpu") == "vmap"
    assert default_train_mode() in TRAIN_MODES


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("noise")
    results = ln.run(out=out, preset="smoke", progress=False)
    return out, results


def test_smoke_run_writes_the_documented_results(smoke_run):
    out, results = smoke_run
    for path in ("results.json", "report.html", "figures/label_noise_curves.png",
                 "arrays/curves.npz"):
        assert (out / path).is_file(), path
    saved = json.loads((out / "results.json").read_text())
    assert saved["study"] == ln.NAME == "label_noise"
    for key in ("title", "preset", "seed", "headline", "published",
                "preset_deviations_from_paper", "stages"):
        assert key in saved, key
    rates = list(ln.PRESETS["smoke"].rates)
    cur = saved["corruption"]
    assert cur["p"] == rates
    for m in ("accuracy", "lwlrap", "roc_auc"):
        for stat in ("mean", "std"):
            assert len(cur[f"{m}_{stat}"]) == len(rates)
            assert all(0.0 <= v <= 1.0 for v in cur[f"{m}_{stat}"])
        for cond in ("curated", "noisy", "curated+noisy"):
            assert 0.0 <= saved[cond][f"{m}_mean"] <= 1.0
    # "curated only" is the p = 0 cross-entropy run of the curve.
    assert saved["curated"]["accuracy_mean"] == pytest.approx(cur["accuracy_mean"][0])
    for cond in ("noisy", "curated+noisy"):
        v = saved["noise_equivalent_p"][cond]
        assert v is None or 0.0 <= v <= rates[-1]
        assert "note" in saved["noise_equivalent_p_detail"]["accuracy"][cond]
    assert set(saved["robust"]) == set(ln.PRESETS["smoke"].robust)
    # Exactly round(p * N) labels changed at each rate.
    n = saved["num_clips"]["curated"]
    assert cur["labels_changed"] == [round(p * n) for p in rates]
    seeds = ln.PRESETS["smoke"].seeds
    assert saved["timing"]["runs"] == seeds * (2 * len(rates) + 2)
    # data, per seed, aggregate, and the four label-issue stages
    assert len(saved["stages"]["computed"]) == 1 + seeds * 5 + 1 + 4


def test_smoke_run_scores_the_label_issues_against_the_truth(smoke_run):
    from jaxaudio.data.synth_instruments import NOISE_KINDS

    out, results = smoke_run
    li = results["label_issues"]
    assert li["rates"] == list(ln.PRESETS["smoke"].issue_rates) and li["folds"] == ln.FOLDS
    n = results["num_clips"]["curated"]
    for p, d in zip(li["rates"], li["curated_corrupted"]):
        assert d["num_wrong"] == round(p * n) and d["num_clips"] == n
        for m in ("precision", "recall", "roc_auc"):
            assert d[m] is None or 0.0 <= d[m] <= 1.0
    assert set(li["noisy_per_kind"]) == set(NOISE_KINDS)
    assert sum(d["num_clips"] for d in li["noisy_per_kind"].values()) == \
        results["num_clips"]["noisy"]
    assert 0.0 <= li["noisy_share_flagged"]["either"] <= 1.0
    assert li["noisy_share_flagged"]["either"] >= max(li["noisy_share_flagged"]["single"],
                                                      li["noisy_share_flagged"]["multi"])
    test = li["retrained"]
    for name in ("curated", "noisy", "noisy gce", "noisy relabelled", "noisy dropped",
                 "curated+noisy", "curated+noisy relabelled", "curated+noisy dropped"):
        assert name in test, name
    # The uncleaned noisy runs train on every noisy clip; the dropped ones on fewer.
    assert test["noisy"]["num_train"] == results["num_clips"]["noisy"]
    assert test["noisy dropped"]["num_train"] == test["noisy"]["num_train"] - li["num_dropped"]
    assert "Finding the wrong labels" in (out / "report.html").read_text()


def test_rerun_recomputes_only_a_lost_stage(smoke_run):
    import shutil

    out, results = smoke_run
    log = [json.loads(line) for line in (out / "stages" / "log.jsonl").read_text().splitlines()]
    victim = next(e for e in log if e["stage"] == "train noisy ce seed 0")
    shutil.rmtree(out / "stages" / f"train-{victim['key']}")
    again = ln.run(out=out, preset="smoke", progress=False)
    assert again["stages"]["computed"] == ["train noisy ce seed 0"]
    for key in ("corruption", "robust", "curated", "noisy", "curated+noisy",
                "noise_equivalent_p_detail"):
        assert again[key] == results[key]


def _fake_train(calls):
    def fake(stage_dir, *, condition, seed, loss, epochs, rates=None, **_):
        calls.append((condition, loss[0], seed, epochs))
        k = len(rates) if condition == "curated" else 1
        rng = np.random.default_rng([seed, len(calls)])
        out = {m: rng.uniform(0.1, 0.9, k) for m in ("accuracy", "lwlrap", "roc_auc")}
        return dict(out, train_loss=np.zeros((k, epochs)), steps=1, num_train=48,
                    train_seconds=0.0, eval_seconds=0.0)
    return fake


def test_adding_seeds_or_losses_trains_only_what_is_new(smoke_run, tmp_path, monkeypatch):
    import shutil

    out, _ = smoke_run
    shutil.copytree(out / "stages", tmp_path / "stages")
    calls = []
    monkeypatch.setattr(ln, "_train", _fake_train(calls))
    res = ln.run(out=tmp_path, preset="smoke", progress=False, seeds=3,
                 robust=["gce", "smoothing"], label_issues=False)
    assert sorted(calls) == sorted(
        [("curated", "label_smoothing", s, 1) for s in (0, 1)]
        + [(c, l, 2, 1) for c, l in (("curated", "cross_entropy"), ("curated", "gce"),
                                     ("curated", "label_smoothing"), ("noisy", "cross_entropy"),
                                     ("curated+noisy", "cross_entropy"))])
    assert "data" in res["stages"]["reused"] and "corruption seed 0" in res["stages"]["reused"]
    calls.clear()
    res = ln.run(out=tmp_path, preset="smoke", progress=False, epochs=2, label_issues=False)
    assert len(calls) == 8 and all(c[3] == 2 for c in calls)  # every model, data reused
    assert {"data", "corruption seed 0", "corruption seed 1"} <= set(res["stages"]["reused"])


def test_run_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        ln.run(out=tmp_path, preset="huge")
    with pytest.raises(ValueError, match="--seeds"):
        ln.run(out=tmp_path, preset="smoke", seeds=0)
    with pytest.raises(ValueError, match="robust"):
        ln.run(out=tmp_path, preset="smoke", robust=["magic"])
    with pytest.raises(ValueError, match="FSDKaggle2019 root"):
        ln.run(out=tmp_path, preset="smoke", data=str(tmp_path / "missing"), progress=False)
    with pytest.raises(ValueError, match="--train-mode"):
        ln.run(out=tmp_path, preset="smoke", train_mode="parallel")


def test_cli_registers_the_noise_command():
    from jaxaudio import cli

    args = cli.build_parser().parse_args(["noise", "--preset", "smoke", "--out", "x",
                                          "--seeds", "2"])
    assert args.func is ln.run_from_args and args.seeds == 2 and args.preset == "smoke"
