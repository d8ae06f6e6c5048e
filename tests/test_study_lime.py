"""Study 3 (lime_veracity) at ``--preset smoke``: schema, files, granular stage reuse, bad input."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudio.audit import detector, protocol
from jaxaudio.audit.results import preset_deviations
from jaxaudio.dsp import frontend as fe
from jaxaudio.models import inference
from jaxaudio.models.classifier import Classifier, build_module
from jaxaudio.studies import lime_veracity as study
from jaxaudio.training import tasks

DIRECTIONS = {"nosing_to_sing", "sing_to_nosing"}
DOMAINS = {"waveform", "spectrogram"}


def _calibrated_detector(directory):
    """An untrained smoke-width detector whose output bias is set so that half of the smoke
    test frames are predicted "sing": both attack directions exist, and no training run
    (a minute on 2 busy cores) is needed. The training path is the same ``tasks`` +
    ``train.train`` code the foundation tests cover."""
    p = tasks.preset("voice", "smoke")
    module = build_module("singing_voice_detector",
                          {"width": p.width, "zero_mean_first_conv": True})
    frontend = tasks.frontend_for("voice")
    dummy = jnp.zeros((1, frontend.n_mels, p.excerpt_frames), jnp.float32)
    # One compiled init instead of Flax's eager op-by-op init (~25 s of first-op compiles).
    variables = jax.jit(lambda key: module.init(key, dummy, train=False))(jax.random.key(0))
    clf = Classifier(frontend=frontend, model_name="singing_voice_detector",
                     model_kwargs={"width": p.width, "zero_mean_first_conv": True},
                     variables=variables, mean=np.zeros(frontend.n_mels, np.float32),
                     std=np.ones(frontend.n_mels, np.float32), label_names=inference.VOICE_LABELS,
                     task="binary", excerpt_frames=p.excerpt_frames)
    song = tasks.load_split("synth-voice", "test", preset_name="smoke", seed=0).waves[0]
    mean, std = fe.band_statistics(clf.features(song[None]))
    clf = dataclasses.replace(clf, mean=mean, std=std)
    _, probs = inference.song_frame_probabilities(clf, song, frame_step=p.eval_frame_step)
    logits = np.log(probs) - np.log1p(-probs)
    variables = jax.tree_util.tree_map(lambda a: a, clf.variables)
    bias = variables["params"]["Dense_2"]["bias"]
    variables["params"]["Dense_2"]["bias"] = bias - float(np.median(logits))
    return dataclasses.replace(clf, variables=variables).save(directory)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    model = _calibrated_detector(tmp_path_factory.mktemp("detector"))
    out = tmp_path_factory.mktemp("lime_veracity")
    results = study.run(out=out, preset="smoke", seed=0, model=model, progress=False)
    return out, results, model


def test_results_schema(smoke):
    out, r, _ = smoke
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["study"] == study.NAME == "lime_veracity"
    assert isinstance(on_disk["headline"], str) and on_disk["published"] == protocol.PUBLISHED
    m = on_disk["model"]  # the detector row: error at 0.51, raw and filtered, baseline
    assert 0.0 <= m["accuracy"] <= 1.0 and m["error"] == pytest.approx(1 - m["accuracy"])
    assert m["threshold"] == 0.51 and m["median_filter_seconds"] == 0.8
    assert 0.0 <= m["error_median_filtered"] <= 1.0
    assert m["published_error_percent"] == {"mean_percent": 11.54, "std_percent": 0.96}
    assert 0.0 <= m["linear_baseline"]["error"] <= 1.0
    assert "frame error" in (out / "report.html").read_text()
    for table in ("table1", "table2", "flip_curves"):
        assert set(on_disk[table]) == DOMAINS
        for dom in DOMAINS:
            assert set(on_disk[table][dom]) == DIRECTIONS
    for dom in DOMAINS:
        for name in DIRECTIONS:
            t1 = on_disk["table1"][dom][name]
            assert t1 is None or 0.0 <= t1 <= 1.0
            assert {"lime", "norm"} <= set(on_disk["table2"][dom][name])
            assert {"lime", "norm", "occlusion", "integrated_gradients"} <= set(
                on_disk["table1_all"][dom][name])
            curves = on_disk["flip_curves"][dom][name]
            assert set(curves) == {"lime", "norm", "occlusion", "integrated_gradients"}
            assert all(len(v) == 21 for v in curves.values())  # k = 0..20
            a = on_disk["attacks"][dom][name]
            assert a["num_audited"] <= a["num_success"] <= a["num_excerpts"]
    assert on_disk["timing"]["num_samples"] == study.PRESETS["smoke"].num_samples
    if any(on_disk["attacks"][d][n]["num_audited"] for d in DOMAINS for n in DIRECTIONS):
        assert on_disk["stability"]["sample_sizes"] == list(
            study.PRESETS["smoke"].stability_sizes)
    assert on_disk["horses"]["num_examples"] >= 1
    # one entry per explainer, named as the report reads it
    for explainer in ("lime", "occlusion", "integrated_gradients"):
        if on_disk["horses"]["num_found"]:
            assert {f"{explainer}_top1", f"{explainer}_top3"} <= set(on_disk["horses"])
        if on_disk["subset"]["num_adversaries"]:
            assert f"{explainer}_recall" in on_disk["subset"]
    sp = study.PRESETS["smoke"]
    counts = [on_disk["excerpts"][name]["num"] for name in DIRECTIONS]
    assert sum(counts) >= 1 and all(c <= sp.per_song * sp.songs for c in counts)
    levels = list(study.ADVERSARY["levels"])
    assert levels[0] == study.ADVERSARY["threshold"] == 0.51
    sweep = on_disk["strength_sweep"]
    assert sweep["levels"] == levels and sweep["k"] == 3
    for dom in DOMAINS:
        st = on_disk["stretch_attacks"][dom]
        assert st["levels"] == levels and st["num_stretches"] == sp.songs
        assert st["num_frames"] == sp.songs * sp.stretch_frames
        assert all(0.0 <= v <= 1.0 for v in st["frames_flipped"])
        for name in DIRECTIONS:  # the 0.51 point of the sweep is the main study's table 1
            row = sweep[dom][name]
            assert len(row["lime"]) == len(row["norm"]) == len(levels)
            assert row["lime"][0] == on_disk["table1_all"][dom][name]["lime"]
            assert row["norm"][0] == on_disk["table1_all"][dom][name]["norm"]
    assert "median_snr_db" in on_disk["stretch_attacks"]["waveform"]
    arrays = np.load(out / "arrays" / "strength_sweep.npz")
    np.testing.assert_allclose(arrays["levels"], levels)
    assert arrays["spectrogram.sing_to_nosing.lime"].shape == (len(levels),)
    assert (out / "figures" / "fig5_strength_sweep.png").is_file()
    for clip in on_disk["listening"]:
        assert list(clip["files"]) == ["original", "adversarial", "perturbation"]
        assert all((out / f).is_file() for f in clip["files"].values())
    assert not on_disk["stages"]["reused"]
    assert on_disk == json.loads(json.dumps(r))  # what run() returns is what it wrote
    for name in ("report.html", "figures/fig1_flip_curves.png", "figures/fig4_fidelity.png",
                 "arrays/flip_curves.npz", "arrays/fidelity.npz", "arrays/horses.npz"):
        assert (out / name).is_file(), name


def test_num_samples_rerun_recomputes_only_explanations_and_downstream(smoke):
    out, first, model = smoke
    again = study.run(out=out, preset="smoke", seed=0, model=model, progress=False,
                      num_samples=64)
    computed = set(again["stages"]["computed"])
    assert computed and all(s.startswith(("lime-", "audit-")) or s == "assemble"
                            for s in computed), computed
    assert {f"lime-{d}-{n}" for d in DOMAINS for n in DIRECTIONS} <= computed
    assert {"audit-waveform", "audit-spectrogram", "assemble"} <= computed
    reused = set(again["stages"]["reused"])
    assert {"excerpts", "detector", "stability", "horses", "subset",
            "attribution-horses"} <= reused
    assert {f"adversaries-{d}-{n}" for d in DOMAINS for n in DIRECTIONS} <= reused
    assert again["attacks"] == first["attacks"]
    assert again["timing"]["num_samples"] == 64
    # Back to the preset: everything is on disk already.
    third = study.run(out=out, preset="smoke", seed=0, model=model, progress=False)
    assert third["stages"]["computed"] == []
    assert third["table1_all"] == first["table1_all"] and third["fidelity"] == first["fidelity"]


def test_presets_change_only_sizes():
    """demo's deviations from the paper are sizes only; the method (ADVERSARY) is shared."""
    size_names = {"songs", "stretch_frames", "per_song", "num_samples"}

    def deviations(sp):
        return preset_deviations(sp, protocol.PAPER, protocol.PAPER_NAMES)

    for line in deviations(study.PRESETS["demo"]):
        assert line.split()[0] in size_names, line
    assert deviations(study.PRESETS["paper"]) == []
    assert "songs 4 (paper: all test songs)" in deviations(study.PRESETS["demo"])
    assert study.ADVERSARY["waveform"] == {"clip_eps": 0.01, "alpha": 2.0,
                                           "learning_rate": 3e-4}
    assert study.PRESETS["demo"].max_iterations == protocol.PAPER["max_iterations"] == 1000


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="--preset"):
        study.run(out=tmp_path, preset="huge")
    with pytest.raises(ValueError, match="--num-samples"):
        study.run(out=tmp_path, preset="smoke", num_samples=1)
    with pytest.raises(ValueError, match="--per-direction"):
        study.run(out=tmp_path, preset="smoke", per_direction=0)
    with pytest.raises(ValueError, match="classifier.json"):
        study.run(out=tmp_path, preset="smoke", model=tmp_path / "nothing")


def test_detector_training_follows_the_published_method_and_lists_only_sizes():
    for name in ("smoke", "demo", "paper"):
        t = detector.training_settings(name, study.PRESETS[name])
        assert (t["learning_rate"], t["lr_decay_per_epoch"], t["batch_size"]) == (1e-3, 0.85, 32)
    paper = detector.training_settings("paper", study.PRESETS["paper"])
    assert detector.training_deviations(paper) == []
    demo = detector.training_deviations(detector.training_settings("demo", study.PRESETS["demo"]))
    assert demo[0] == "detector trained on 40 batches per epoch (paper: 2000)"
    assert not any(w in " ".join(demo) for w in ("lr", "learning", "decay", "threshold", "epochs"))
    sized = dataclasses.replace(study.PRESETS["demo"], train_examples_per_epoch=64,
                                train_epochs=3)
    t = detector.training_settings("demo", sized)
    assert (t["examples_per_epoch"], t["epochs"], t["lr_decay_per_epoch"]) == (64, 3, 0.85)
    assert "detector epochs 3 (paper: 20)" in detector.training_deviations(t)
