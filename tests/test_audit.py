"""Tests for jaxaudio.audit on hand-made detectors whose answer is known.

The detector looks at one component only: its logit is the mean of component ``C_STAR`` minus
0.5. On an all-zero spectrogram it says 0; a delta that raises component ``C_STAR`` by 1 flips it,
whatever else the delta does.
"""

import jax
import numpy as np
import pytest

from jaxaudio import attacks, audit
from jaxaudio import explain as ex

SHAPE = (8, 10)  # 4 bands x 5 segments of 2 x 2 cells
MASKS = ex.component_masks(SHAPE)
C = 20
C_STAR = 7
AREA = MASKS.sum(axis=(1, 2))


def logit_one_component(specs):
    """(batch, 8, 10) -> (batch, 1): mean of component C_STAR minus 0.5."""
    return (ex.component_sums(specs, MASKS)[:, C_STAR] / AREA[C_STAR] - 0.5)[:, None]


PREDICT = ex.binary_to_two_class(logit_one_component, from_logits=True)


def _delta(levels: dict) -> np.ndarray:
    return np.einsum("c,cft->ft", np.array([levels.get(c, 0.0) for c in range(C)]), MASKS)


# Example 0: decoys 2 and 11 carry the largest delta; example 1: C_STAR carries the largest.
SPECS = np.zeros((2,) + SHAPE, np.float32)
DELTAS = np.stack([_delta({C_STAR: 1.0, 2: 3.0, 11: 3.0}),
                   _delta({C_STAR: 4.0, 2: 1.0})]).astype(np.float32)
TARGETS = np.array([1, 1])


@pytest.fixture(scope="module")
def exact_rankings():
    """Occlusion explanations of the adversaries (exact for this detector)."""
    weights = [ex.occlusion(PREDICT, s + d, labels=1, baseline="zero").weights_for(1)
               for s, d in zip(SPECS, DELTAS)]
    return audit.rankings_from_weights(np.stack(weights)), np.stack(weights)


def test_exact_explainer_flips_at_k1_norm_depends_on_decoys(exact_rankings):
    rankings, _ = exact_rankings
    assert list(rankings[:, 0]) == [C_STAR, C_STAR]
    flips = audit.flip_matrix(PREDICT, SPECS, DELTAS, rankings, MASKS, TARGETS)
    assert flips.shape == (2, C + 1)
    assert not flips[:, 0].any()  # nothing kept: the original label
    assert flips[:, 1:].all()  # the exact explainer flips from k = 1 on
    norm = audit.norm_rankings(DELTAS, MASKS)
    assert set(norm[0, :2]) == {2, 11} and norm[0, 2] == C_STAR and norm[1, 0] == C_STAR
    nflips = audit.flip_matrix(PREDICT, SPECS, DELTAS, norm, MASKS, TARGETS, chunk_examples=1)
    np.testing.assert_array_equal(nflips[0], np.arange(C + 1) >= 3)  # decoys first
    np.testing.assert_array_equal(nflips[1], np.arange(C + 1) >= 1)
    np.testing.assert_allclose(audit.flip_curve(nflips)[:4], [0, 0.5, 0.5, 1])
    assert audit.table_at_k(flips, 3) == 1.0 and audit.table_at_k(nflips, 1) == 0.5


def test_flip_matrix_batch_equals_by_hand(exact_rankings):
    rng = np.random.default_rng(0)
    specs = rng.normal(0, 0.3, (3,) + SHAPE).astype(np.float32)
    deltas = rng.normal(0.4, 0.5, (3,) + SHAPE).astype(np.float32)
    rankings = np.stack([rng.permutation(C) for _ in range(3)]).astype(np.int32)
    targets = np.array([1, 0, 1])
    flips = audit.flip_matrix(PREDICT, specs, deltas, rankings, MASKS, targets, chunk_examples=2)
    for i in range(3):
        for k in range(C + 1):
            sel = audit.selection_from_ranking(rankings[i:i + 1], k)
            x = specs[i] + np.asarray(audit.restrict_delta(deltas[i], MASKS, sel[0]))
            assert flips[i, k] == (int(np.argmax(PREDICT(x[None])[0])) == targets[i])


def test_table_positive_and_counts(exact_rankings):
    rankings, weights = exact_rankings
    counts = audit.positive_counts(weights)
    np.testing.assert_array_equal(counts, [1, 1])  # only C_STAR matters
    flips = audit.flip_matrix(PREDICT, SPECS, DELTAS, rankings, MASKS, TARGETS)
    norm = audit.flip_matrix(PREDICT, SPECS, DELTAS, audit.norm_rankings(DELTAS, MASKS), MASKS,
                             TARGETS)
    t2 = audit.table_positive(flips, norm, counts)
    assert t2 == {"explainer": 1.0, "norm": 0.5, "mean_components": 1.0, "num_examples": 2}
    with pytest.raises(ValueError):
        audit.table_positive(flips, norm, np.array([1, 21]))


def test_selection_and_rankings():
    w = np.array([[0.1, -1.0, 0.5, 0.5]])
    np.testing.assert_array_equal(audit.rankings_from_weights(w), [[2, 3, 0, 1]])
    np.testing.assert_array_equal(audit.selection_from_ranking([[2, 3, 0, 1]], 2), [[0, 0, 1, 1]])
    np.testing.assert_array_equal(audit.selection_from_ranking([[2, 3, 0, 1]], 0), [[0, 0, 0, 0]])


def test_bad_inputs():
    r = np.tile(np.arange(C, dtype=np.int32), (2, 1))
    with pytest.raises(ValueError, match="permutation"):
        audit.flip_matrix(PREDICT, SPECS, DELTAS, np.zeros((2, C), np.int32), MASKS, TARGETS)
    with pytest.raises(ValueError, match="deltas"):
        audit.flip_matrix(PREDICT, SPECS, DELTAS[:1], r, MASKS, TARGETS)
    with pytest.raises(ValueError, match="masks"):
        audit.flip_matrix(PREDICT, SPECS, DELTAS, r, MASKS[:, :4], TARGETS)
    with pytest.raises(ValueError, match="finite"):
        audit.norm_rankings(np.full((1,) + SHAPE, np.nan), MASKS)
    with pytest.raises(ValueError, match="k must"):
        audit.table_at_k(np.zeros((2, C + 1), bool), C + 1)
    with pytest.raises(ValueError, match="kind"):
        audit.horse_patterns(MASKS, "zebra")
    with pytest.raises(ValueError, match="amplitudes"):
        audit.find_horses(PREDICT, SPECS, TARGETS, MASKS, amplitudes=[0.0], key=jax.random.key(0))
    with pytest.raises(ValueError, match="size"):
        audit.random_subsets(jax.random.key(0), 2, C, 0)


# --------------------------------------------------------------------------- horses


def test_horse_patterns_stay_inside_their_component():
    for kind in audit.HORSE_KINDS:
        p = audit.horse_patterns(MASKS, kind)
        assert p.shape == MASKS.shape
        np.testing.assert_array_equal(p * (1 - MASKS), 0)
        assert np.all(p.max(axis=(1, 2)) == pytest.approx(1.0))
    comb = audit.horse_patterns(MASKS, "comb")
    assert comb[C_STAR].sum() == MASKS[C_STAR].sum() / 2


def test_find_horses_finds_the_only_component_that_matters():
    specs = np.zeros((3,) + SHAPE, np.float32)
    labels = np.zeros(3, np.int64)
    horses = audit.find_horses(PREDICT, specs, labels, MASKS, amplitudes=[2.0, 0.25, 0.75],
                               kinds=("comb", "band"), key=jax.random.key(0))
    assert horses["found"].all()
    np.testing.assert_array_equal(horses["component"], C_STAR)
    np.testing.assert_array_equal(horses["kind"], 1)  # band: mean 0.75 > 0.5; comb needs 2.0
    np.testing.assert_array_equal(horses["amplitude"], 0.75)
    assert np.all(np.asarray(PREDICT(horses["spec"])).argmax(-1) == 1)
    # an exact explainer finds every horse
    rankings = np.stack([ex.occlusion(PREDICT, h, labels=1, baseline="zero").ranking(1)
                         for h in horses["spec"]])
    assert audit.detection_rate(rankings, horses["component"], k=1) == 1.0
    # nothing flips if the amplitudes are too weak
    none = audit.find_horses(PREDICT, specs[:1], labels[:1], MASKS, amplitudes=[0.1],
                             kinds=("band",), key=jax.random.key(0))
    assert not none["found"][0] and none["component"][0] == -1
    np.testing.assert_array_equal(none["spec"], specs[:1])


# --------------------------------------------------------------------------- subsets


def test_subset_attack_stays_in_subset_and_recall():
    subsets = audit.random_subsets(jax.random.key(1), 4, C, 3)
    assert subsets.shape == (4, C) and np.all(subsets.sum(1) == 3)
    subsets[:, :] = 0
    subsets[:, [C_STAR, 0, 15]] = 1
    cells = np.einsum("nc,cft->nft", subsets, MASKS)
    specs = np.zeros((4,) + SHAPE, np.float32)
    x = np.stack([specs, cells], axis=1)
    f = audit.subset_logits_fn(logit_one_component)
    res = attacks.carlini_wagner(f, x, np.zeros(4, np.int32), decision="sigmoid",
                                 domain="spectrogram", clip_eps=5.0, alpha=10.0,
                                 learning_rate=0.1, max_iterations=100)
    adv = np.asarray(res.adversarial)
    assert np.asarray(res.success).all()
    np.testing.assert_array_equal(adv[:, 1], cells)  # the mask channel never moves
    delta = adv[:, 0] - specs
    np.testing.assert_array_equal(delta * (1 - cells), 0)  # nothing outside the subset
    # only C_STAR carries a gradient, so an exact explainer finds 1 of the 3
    rankings = np.stack([ex.occlusion(PREDICT, s + d, labels=1, baseline="zero").ranking(1)
                         for s, d in zip(specs, delta)])
    recall = audit.subset_recall(rankings, subsets)
    assert np.all(recall >= 1 / 3)
    first = [C_STAR, 0, 15] + [c for c in range(C) if c not in (C_STAR, 0, 15)]
    np.testing.assert_allclose(audit.subset_recall(np.tile(first, (4, 1)), subsets), 1.0)


# --------------------------------------------------------------------------- fidelity


def test_fidelity_vs_correctness():
    r = audit.fidelity_vs_correctness([0.9, 0.8, 0.3, 0.2], [True, True, False, False])
    assert r["auc"] == 1.0 and r["correlation"] > 0.9 and r["num"] == 4
    assert r["mean_score_correct"] == pytest.approx(0.85)
    r = audit.fidelity_vs_correctness([0.5, 0.5, 0.5], [True, False, True])
    assert r["auc"] == 0.5 and np.isnan(r["correlation"])
    r = audit.fidelity_vs_correctness([0.1, 0.9], [True, True])
    assert np.isnan(r["auc"]) and r["fraction_correct"] == 1.0
    with pytest.raises(ValueError):
        audit.fidelity_vs_correctness([0.1], [True, False])


def test_direction_tables_and_summaries():
    from jaxaudio import audit

    flips = {s: np.zeros((2, 21), bool) for s in ("lime", "occlusion", "norm")}
    flips["norm"][:, 3:] = True
    flips["lime"][0, 5:] = True
    w = np.tile(np.arange(20.0) - 17, (2, 1))  # 2 positive components each
    t = audit.direction_tables(flips, {"lime": w, "occlusion": w}, k=3)
    assert t["table1"]["norm"] == 1.0 and t["table1"]["lime"] == 0.0
    assert t["table2"]["lime_mean_components"] == 2.0 and t["table2"]["norm"] == 0.0
    assert t["curves"]["lime"][5] == 0.5 and t["table1"]["num_examples"] == 2
    empty = audit.direction_tables({s: f[:0] for s, f in flips.items()},
                                   {"lime": w[:0], "occlusion": w[:0]})
    assert np.isnan(empty["table1"]["lime"]) and empty["table1"]["num_examples"] == 0
    h = audit.horse_summary([True, False], [4, -1], [1.0, 0.0], {"lime": np.eye(20)[[4]]},
                            [0.5], k=3)
    assert h["num_found"] == 1 and h["lime_top1"] == 1.0 and list(h["_hit"]) == [True]
    s = audit.subset_summary([True], np.eye(20)[[2]], {"lime": np.eye(20)[[2]]}, [0.1])
    assert s["lime_recall"] == 1.0 and s["subset_size"] == 1 and s["chance"] == 0.05


# --------------------------------------------------------------------------- study assembly

DIRS = ("nosing_to_sing", "sing_to_nosing")


def _empty_group():
    return ({"audited": np.zeros(0, np.int64), "deltas": np.zeros((0,) + SHAPE, np.float32)},
            {"lime_weights": np.zeros((0, C)), "occlusion_weights": np.zeros((0, C)),
             "lime_score": np.zeros(0)})


def test_flip_set_audits_successes_and_audit_groups_tables():
    from jaxaudio.audit import adversaries

    specs = np.zeros((3,) + SHAPE, np.float32)
    classes = np.array([0, 1, 0])
    a = adversaries.flip_set(logit_one_component, specs, specs, classes, 0, predict_fn=PREDICT,
                             domain="spectrogram", confidence=0.5, clip_eps=5.0, alpha=10.0,
                             learning_rate=0.1, max_iterations=100)
    np.testing.assert_array_equal(a["index"], [0, 2])  # class 0 only
    assert a["success"].all() and list(a["audited"]) == [0, 2]
    np.testing.assert_array_equal(a["explain_targets"], 1)
    np.testing.assert_allclose(a["explain_specs"], specs[[0, 2]] + a["deltas"])
    assert np.all(np.asarray(PREDICT(a["explain_specs"])).argmax(-1) == 1)
    # only C_STAR carries a gradient: an exact explainer's top-1 keeps the whole flip
    w = np.stack([ex.occlusion(PREDICT, s, labels=1, baseline="zero").weights_for(1)
                  for s in a["explain_specs"]])
    e = {"lime_weights": w, "occlusion_weights": -w, "lime_score": np.array([0.9, 0.8])}
    empty_adv, empty_e = _empty_group()
    out = audit.audit_groups(PREDICT, specs, classes, [a, empty_adv], [e, empty_e], DIRS,
                             explainers=("lime", "occlusion"), k=1)
    np.testing.assert_array_equal(out["group"], [0, 0])
    assert out["nosing_to_sing"]["table1"]["lime"] == 1.0
    assert out["nosing_to_sing"]["table1"]["occlusion"] == 0.0  # ranks C_STAR last
    assert out["nosing_to_sing"]["table1"]["num_examples"] == 2
    assert np.isnan(out["sing_to_nosing"]["table1"]["lime"])
    assert out["flips_nosing_to_sing_lime"].shape == (2, C + 1)
    assert out["flips_sing_to_nosing_norm"].shape == (0, C + 1)


def _tables(score, group, flips_lime):
    t = {"score": np.asarray(score), "group": np.asarray(group)}
    for g, name in enumerate(DIRS):
        f = {"lime": np.asarray(flips_lime)[t["group"] == g], "norm": np.ones((0, 21), bool)}
        f["norm"] = np.ones_like(f["lime"])
        t[name] = audit.direction_tables(f, {"lime": np.ones((len(f["lime"]), 20))}, k=3)
        t[f"flips_{name}_lime"] = f["lime"]
    return t


def test_assemble_fidelity_points_and_controls():
    from jaxaudio.audit import results

    flips = np.zeros((3, 21), bool)
    flips[0, 3:] = True  # the first adversary flips with LIME's top 3
    tables = {"waveform": _tables([0.9, 0.5, 0.1], [0, 0, 1], flips),
              "spectrogram": _tables([0.7], [1], flips[:1])}
    horses = {"found": np.array([True, False]), "component": np.array([4, -1]),
              "amplitude": np.array([2.0, 0.0]), "spread": 1.5}
    lime_h = {"lime_weights": np.eye(20)[[4]], "lime_score": np.array([0.6])}
    subset = {"success": np.array([True]), "subsets": np.eye(20)[[2]]}
    lime_s = {"lime_weights": np.eye(20)[[2]], "lime_score": np.array([0.3])}
    r = results.assemble(tables, horses=horses, subset=subset, stability={"k": 3},
                         lime_horses=lime_h, attribution_horses={}, lime_subset=lime_s,
                         attribution_subset={}, domains=("waveform", "spectrogram"),
                         directions=DIRS, k=3)
    assert list(r) == ["table1_all", "table2_all", "flip_curves", "stability", "horses",
                       "subset", "fidelity"]
    points = r["fidelity"]["points"]
    assert [(p["domain"], p["direction"], p["correct"]) for p in points] == [
        ("waveform", "nosing_to_sing", True), ("waveform", "nosing_to_sing", False),
        ("waveform", "sing_to_nosing", False), ("spectrogram", "sing_to_nosing", True)]
    assert [p["score"] for p in points] == [0.9, 0.5, 0.1, 0.7]
    assert r["fidelity"]["adversaries"]["num"] == 4 and r["fidelity"]["horses"]["num"] == 1
    assert "_hit" not in r["horses"] and r["horses"]["spectrogram_std"] == 1.5
    assert r["horses"]["lime_top1"] == 1.0 and r["subset"]["lime_recall"] == 1.0
    assert r["table1_all"]["waveform"]["nosing_to_sing"]["lime"] == 0.5
    assert r["table1_all"]["spectrogram"]["sing_to_nosing"]["lime"] == 1.0
    pub = results.published_tables(r, ("waveform", "spectrogram"), DIRS)
    assert pub["table1"]["waveform"]["nosing_to_sing"] == 0.5
    assert set(pub["table2"]["spectrogram"]["sing_to_nosing"]) == {"lime", "norm",
                                                                     "lime_mean_components"}
    assert np.isnan(pub["table1"]["spectrogram"]["nosing_to_sing"])  # empty group
    assert results.headline(r["table1_all"], ("waveform",), DIRS) == (
        "LIME top-3 still flips: waveform nosing to sing 50%, waveform sing to nosing 0%")


def test_results_counts_timing_and_report_arrays():
    from jaxaudio.audit import results

    direction = np.array([0, 0, 1])
    adv = {"waveform": {DIRS[0]: {"success": np.array([True, False]), "audited": np.array([0])},
                        DIRS[1]: {"success": np.array([True]), "audited": np.zeros(0)}}}
    counts = results.attack_counts(direction, adv, directions=DIRS)
    assert counts["waveform"][DIRS[0]] == {"num_excerpts": 2, "num_success": 1,
                                           "num_audited": 1}
    assert counts["waveform"][DIRS[1]]["num_audited"] == 0
    assert results.excerpt_counts(direction, [True, False, True], DIRS) == {
        DIRS[0]: {"num": 2, "num_correct": 1}, DIRS[1]: {"num": 1, "num_correct": 1}}
    t = results.lime_timing([1.0, 2.0, 6.0], 128)
    assert t["seconds_per_explanation"] == 2.0 and t["mean_seconds_per_explanation"] == 3.0
    assert t["num_samples"] == 128 and t["num_explanations"] == 3
    assert results.lime_timing([], 8)["seconds_per_explanation"] is None
    waves = np.ones((3, 8000), np.float32)
    groups = [{"index": np.array([0, 1]), "success": np.array([True, False]),
               "adversarial": np.ones((2, 8000), np.float32) * 1.1}]
    snr = results.median_snr(waves, groups)
    assert snr["median_snr_db_whole_clip"] == pytest.approx(20.0, abs=1e-3)
    assert results.median_snr(waves, [{**groups[0], "success": np.zeros(2, bool)}]) == {}
    rects = results.component_rects(SHAPE)
    for c, (f0, f1, t0, t1) in enumerate(rects):  # each rectangle is its component's mask
        box = np.zeros(SHAPE)
        box[f0:f1, t0:t1] = 1
        np.testing.assert_array_equal(box, MASKS[c])
    curves = results.flip_curve_arrays({"waveform": {DIRS[0]: {"lime": [0.0, None, 1.0]}}})
    assert np.isnan(curves[f"waveform.{DIRS[0]}.lime"][1])
    fid = results.fidelity_arrays({"points": [{"domain": "spectrogram", "score": 0.5,
                                               "correct": True}]}, ("waveform", "spectrogram"))
    assert list(fid["domain"]) == [1] and len(fid["horse_score"]) == 0
    delta = _delta({C_STAR: 1.0, 2: 3.0})
    w = np.zeros(C)
    w[[5, 7, 9]] = [3.0, 2.0, 1.0]
    example = results.example_arrays(np.zeros(SHAPE), delta, w, MASKS, rects,
                                     domain="spectrogram", direction=DIRS[1], k=2)
    assert list(example["lime_top"]) == [5, 7] and list(example["norm_top"]) == [2, C_STAR]
    np.testing.assert_array_equal(example["weight_map"], np.einsum("c,cft->ft", w, MASKS))
    horses = {"found": np.array([False, True, True]),
              "spec": np.arange(3)[:, None, None] * np.ones((3,) + SHAPE),
              "component": np.array([-1, 3, 4]), "kind": np.array([-1, 0, 2])}
    h = results.horse_arrays(horses, np.eye(C)[[3, 4]], np.array([0.1, 0.2]), rects, k=3,
                             max_shown=1)
    assert list(h["component"]) == [3] and h["spec"][0, 0, 0] == 1 and h["lime_top"][0, 0] == 3
    none = results.horse_arrays({**horses, "found": np.zeros(3, bool)}, np.zeros((0, C)),
                                np.zeros(0), rects)
    assert none["lime_top"].shape == (0, 3)


def test_pick_per_class_picks_each_predicted_class():
    from jaxaudio.audit import excerpts

    rng = np.random.default_rng(0)
    p = np.array([0.05, 0.1, 0.95, 0.9, 0.6, 0.45])
    table = np.stack([np.zeros(6), np.arange(6), np.array([0, 0, 1, 1, 0, 1]), p], 1)
    rows, classes = excerpts.pick_per_class(table, num=2, confidence=0.8, rng=rng)
    assert list(classes) == [0, 0, 1, 1]
    assert set(rows[:2]) == {0, 1} and set(rows[2:]) == {2, 3}  # confident and correct first
    rows, classes = excerpts.pick_per_class(table, num=0, confidence=0.8, rng=rng)
    assert len(rows) == 0 and classes.dtype == np.int64


def test_sweep_stretch_summaries_and_preset_deviations(tmp_path):
    import dataclasses

    from jaxaudio.audit import protocol, results

    assert results.sweep_stage("waveform", 0.6) == "audit_waveform_c0.60"
    levels = (0.51, 0.6)
    t1 = {"waveform": {n: {"lime": 0.5, "norm": 1.0, "num_examples": 2} for n in DIRS}}
    t2 = {"waveform": {DIRS[0]: {"lime_mean_components": 3.0}, DIRS[1]: {}}}
    stages = {"audit_waveform_c0.60": {
        DIRS[0]: {"table1": {"lime": 0.0, "norm": 0.5, "num_examples": 1},
                  "table2": {"lime_mean_components": 2.0}},
        DIRS[1]: {"table1": {"lime": None, "norm": None, "num_examples": 0}, "table2": {}}}}
    sweep = results.sweep_results(stages, t1, t2, levels, domains=("waveform",),
                                  directions=DIRS, k=3)
    assert sweep["levels"] == [0.51, 0.6] and sweep["k"] == 3
    assert sweep["waveform"][DIRS[0]] == {"lime": [0.5, 0.0], "norm": [1.0, 0.5],
                                          "num_examples": [2, 1]}
    assert sweep["waveform"][DIRS[1]]["lime"] == [0.5, None]
    assert sweep["lime_mean_components"]["waveform"] == {DIRS[0]: [3.0, 2.0],
                                                         DIRS[1]: [None, None]}
    attack = {"success": np.array([[True, False]]), "iterations": np.array([[3, -1]]),
              "p": np.array([[0.6, 0.2], [0.7, 0.45]])}
    songs = {"p": np.array([0.1, 0.9]), "frame_offsets": np.array([0, 2])}
    st = results.stretch_summaries({"songs": songs, "adversaries_waveform": attack}, levels,
                                   domains=("waveform",))
    assert st["waveform"]["success_rate"] == [1.0, 0.0]
    assert st["waveform"]["frames_flipped"] == [1.0, 0.5]

    @dataclasses.dataclass
    class Sizes:
        songs: object = 4
        per_song: int = 10

    assert results.preset_deviations(Sizes(), {"songs": None, "per_song": 10},
                                     protocol.PAPER_NAMES) == ["songs 4 (paper: all test songs)"]
    assert results.preset_deviations(Sizes(songs=None), {"songs": None}) == []
    with pytest.raises(TypeError, match="dataclass"):
        results.preset_deviations({"songs": 4}, {"songs": None})
    arrays = results.sweep_arrays(sweep, domains=("waveform",), directions=DIRS)
    assert np.isnan(arrays[f"waveform.{DIRS[1]}.lime"][1])


def test_protocol_is_the_published_method():
    from jaxaudio.audit import protocol

    assert protocol.ADVERSARY["threshold"] == protocol.ADVERSARY["levels"][0] == 0.51
    assert list(protocol.ADVERSARY["levels"]) == sorted(protocol.ADVERSARY["levels"])
    assert set(protocol.PUBLISHED["table1"]) == set(protocol.DOMAINS)
    for dom in protocol.DOMAINS:
        assert set(protocol.PUBLISHED["table2"][dom]) == set(protocol.DIRECTIONS)
    assert protocol.SEGMENTS == {"n_temporal": 5, "n_frequency": 4} and protocol.TOP_K == 3
    assert set(protocol.PAPER_NAMES) <= set(protocol.PAPER)
