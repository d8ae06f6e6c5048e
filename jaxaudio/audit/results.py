"""The LIME audit's numbers for ``results.json`` and the arrays its report draws from.

Pure numpy on the outputs of the study's stages (:mod:`jaxaudio.studies.lime_veracity`):

- :func:`assemble`: tables, flip curves, controls and fidelity of the whole audit;
- :func:`attack_counts`, :func:`median_snr`, :func:`lime_timing`, :func:`headline`: the rest of
  the results table;
- :func:`results_table`: all of them in ``results.json``'s key order;
- :func:`flip_curve_arrays`, :func:`example_arrays`, :func:`horse_arrays`,
  :func:`fidelity_arrays`: ``arrays/*.npz`` of the report's figures (``component_rects``: the
  component rectangles ``[f0, f1, t0, t1]`` they outline), written by
  :func:`write_report_arrays`;
- :func:`listening_clips`: the listening WAVs (:mod:`jaxaudio.data.listening`) and their facts;
- :func:`stretch_summaries`, :func:`sweep_results`: the stretch attacks per level and table 1
  per adversary strength; :func:`preset_deviations`: a preset's sizes against the paper's.

``stages`` arguments are the study's stage outputs by name: ``excerpts``,
``adversaries_<domain>_<direction>``, ``lime_<set>``, ``horses``, ``assemble``.

Values are JSON-ready; ``None`` / NaN where a group is empty.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping, Optional, Sequence

import jax
import numpy as np

from jaxaudio import metrics
from jaxaudio.audit.controls import fidelity_vs_correctness
from jaxaudio.audit.stretch import attack_summary
from jaxaudio.audit.summaries import horse_summary, subset_summary
from jaxaudio.audit.veracity import norm_rankings, rankings_from_weights
from jaxaudio.data.listening import write_listening_example
from jaxaudio.explain.segmentation import component_masks, component_slices

__all__ = ["assemble", "attack_counts", "median_snr", "lime_timing", "headline",
           "model_summary", "excerpt_counts", "published_tables", "results_table",
           "write_report_arrays", "listening_clips",
           "component_rects", "flip_curve_arrays", "example_arrays", "horse_arrays",
           "fidelity_arrays", "strength_sweep", "sweep_arrays", "sweep_stage",
           "stretch_summaries", "sweep_results", "preset_deviations"]


SNR_NOTE = ("median_snr_db: jaxaudio.metrics.snr_db (first and last 2048 samples left out); "
            "median_snr_db_whole_clip: the same over the whole excerpt (the pre-redesign "
            "inline formula)")
TIMING_NOTE = ("wall time of one LIME explanation (compose + forward passes + surrogate fit) "
               "when its stage was computed")


def _fidelity(tables, domains, directions, k) -> dict:
    rows = [(dom, n, float(s), bool(c)) for dom in domains for d, n in enumerate(directions)
            for s, c in zip(tables[dom]["score"][tables[dom]["group"] == d],
                            tables[dom][f"flips_{n}_lime"][:, k])]
    adversaries = (fidelity_vs_correctness(np.array([r[2] for r in rows]),
                                           np.array([r[3] for r in rows], bool))
                   if rows else None)
    return {"adversaries": adversaries,
            "correct_means": f"the top-{k} LIME components alone flip the label",
            "points": [{"domain": r[0], "direction": r[1], "score": r[2], "correct": r[3]}
                       for r in rows]}


def assemble(tables: Mapping[str, Mapping], *, horses, subset, stability, lime_horses,
             attribution_horses, lime_subset, attribution_subset,
             domains: Sequence[str], directions: Sequence[str], k: int = 3) -> dict:
    """``{"table1_all", "table2_all", "flip_curves", "stability", "horses", "subset",
    "fidelity"}``.

    ``tables[domain]``: ``{"score", "group"}`` (LIME score and direction index per audited
    adversary), ``{direction: direction_tables}`` and ``"flips_<direction>_lime"``;
    ``horses``: ``found``, ``component``, ``amplitude``, ``spread``; ``subset``: ``success``,
    ``subsets``; ``lime_*``: ``lime_weights``, ``lime_score`` and ``attribution_*``:
    ``{explainer}_weights`` of the found horses / successful subset adversaries.
    """
    t = {dom: {n: tables[dom][n] for n in directions} for dom in domains}

    def by_explainer(attribution):  # {"occlusion_weights": w} -> {"occlusion": w}
        return {k.removesuffix("_weights"): attribution[k] for k in attribution.keys()}

    horse_res = horse_summary(
        horses["found"], horses["component"], horses["amplitude"],
        {"lime": lime_horses["lime_weights"], **by_explainer(attribution_horses)},
        lime_horses["lime_score"], k=k)
    subset_res = subset_summary(
        subset["success"], subset["subsets"],
        {"lime": lime_subset["lime_weights"], **by_explainer(attribution_subset)},
        lime_subset["lime_score"])
    fidelity = _fidelity(tables, domains, directions, k)
    hit = horse_res.pop("_hit")
    if len(hit):
        fidelity["horses"] = fidelity_vs_correctness(lime_horses["lime_score"], hit)
        fidelity["horse_points"] = [{"score": float(s), "correct": bool(c)}
                                    for s, c in zip(lime_horses["lime_score"], hit)]
    horse_res["spectrogram_std"] = float(horses["spread"])
    per = {name: {d: {n: t[d][n][key] for n in directions} for d in domains}
           for name, key in (("table1_all", "table1"), ("table2_all", "table2"),
                             ("flip_curves", "curves"))}
    return {**per, "stability": dict(stability), "horses": horse_res, "subset": subset_res,
            "fidelity": fidelity}


def attack_counts(direction, adversaries: Mapping[str, Mapping[str, Mapping]], *,
                  directions: Sequence[str]) -> dict:
    """``{domain: {direction: {"num_excerpts", "num_success", "num_audited"}}}``;
    ``direction``: the direction index of every excerpt, ``adversaries[domain][name]``:
    ``success`` per attacked excerpt and the ``audited`` excerpt indices."""
    direction = np.asarray(direction)
    return {dom: {n: {"num_excerpts": int((direction == d).sum()),
                      "num_success": int(by_name[n]["success"].sum()),
                      "num_audited": len(by_name[n]["audited"])}
                  for d, n in enumerate(directions)} for dom, by_name in adversaries.items()}


def median_snr(waves, adversaries: Sequence[Mapping]) -> dict:
    """Median SNR (dB) of the successful waveform adversaries: ``median_snr_db``
    (:func:`jaxaudio.metrics.snr_db`, ends trimmed) and ``median_snr_db_whole_clip``
    (``trim=0``); ``{}`` when none succeeded. ``adversaries``: ``{"index", "success",
    "adversarial"}`` per group, ``index`` into ``waves``."""

    ok = [a["success"] for a in adversaries]
    if not np.concatenate(ok).any():
        return {}
    clean = np.concatenate([waves[a["index"]][o] for a, o in zip(adversaries, ok)])
    dirty = np.concatenate([a["adversarial"][o] for a, o in zip(adversaries, ok)])
    return {"median_snr_db": float(np.median(metrics.snr_db(clean, dirty))),
            "median_snr_db_whole_clip": float(np.median(metrics.snr_db(clean, dirty, trim=0)))}


def lime_timing(seconds, num_samples: int) -> dict:
    """Median and mean seconds of one explanation (``None`` without explanations)."""
    seconds = np.asarray(seconds)
    return {"seconds_per_explanation": float(np.median(seconds)) if len(seconds) else None,
            "mean_seconds_per_explanation": float(np.mean(seconds)) if len(seconds) else None,
            "num_samples": num_samples, "num_explanations": int(len(seconds))}


def model_summary(excerpts: Mapping) -> dict:
    """The detector's frame accuracy on the test split and what it was measured on."""
    return {"accuracy": float(excerpts["accuracy"]), "num_frames": int(excerpts["num_frames"]),
            "frame_step": int(excerpts["frame_step"]),
            "sing_fraction": float(excerpts["sing_fraction"])}


def excerpt_counts(direction, correct, directions: Sequence[str]) -> dict:
    """``{name: {"num", "num_correct"}}`` of the excerpts of every direction."""
    direction, correct = np.asarray(direction), np.asarray(correct, bool)
    return {n: {"num": int((direction == d).sum()),
                "num_correct": int(correct[direction == d].sum())}
            for d, n in enumerate(directions)}


def published_tables(assembled: Mapping, domains: Sequence[str],
                     directions: Sequence[str]) -> dict:
    """``{"table1", "table2"}`` in the published figures' layout: LIME's Table-1 fraction, and
    Table 2's LIME / norm columns (and LIME's mean component count)."""
    t1, t2 = assembled["table1_all"], assembled["table2_all"]
    return {"table1": {d: {n: t1[d][n]["lime"] for n in directions} for d in domains},
            "table2": {d: {n: {c: t2[d][n][c] for c in ("lime", "norm", "lime_mean_components")}
                           for n in directions} for d in domains}}


def headline(table1_all, domains: Sequence[str], directions: Sequence[str]) -> str:
    """One line: LIME's Table-1 fraction per domain and direction."""
    def pct(v):
        return v if v is None else format(v, ".0%")

    return "LIME top-3 still flips: " + ", ".join(
        f"{d} {n.replace('_', ' ')} {pct(table1_all[d][n]['lime'])}"
        for d in domains for n in directions)


def component_rects(shape, *, n_temporal: int = 5, n_frequency: int = 4) -> np.ndarray:
    """``(C, 4)`` int64 ``[f_start, f_stop, t_start, t_stop]`` of every component."""

    return np.array([[f.start, f.stop, t.start, t.stop] for f, t in component_slices(
        shape, n_temporal=n_temporal, n_frequency=n_frequency)], np.int64)


def flip_curve_arrays(flip_curves) -> dict:
    """``{"<domain>.<direction>.<selection>": curve}`` (float, NaN for ``None``)."""
    return {f"{d}.{n}.{sel}": np.array([np.nan if v is None else v for v in c], float)
            for d, by_name in flip_curves.items() for n, curves in by_name.items()
            for sel, c in curves.items()}


def example_arrays(spec, delta, lime_weights, masks, rects, *, domain: str, direction: str,
                   k: int = 3) -> dict:
    """One audited adversary: its spectrogram, delta, LIME weight map and both top-``k``."""
    return {"domain": domain, "direction": direction, "rects": rects, "spec": spec,
            "delta": delta, "weight_map": np.einsum("c,cft->ft", lime_weights, masks),
            "lime_top": rankings_from_weights(lime_weights[None])[0, :k],
            "norm_top": norm_rankings(np.asarray(delta)[None], masks)[0, :k]}


def horse_arrays(horses, lime_weights, lime_score, rects, *, k: int = 3,
                 max_shown: int = 4) -> dict:
    """The first ``max_shown`` found horses with LIME's top ``k`` (``lime_*``: one row per found
    horse)."""
    found = np.flatnonzero(horses["found"])[:max_shown]
    top = (rankings_from_weights(lime_weights[:len(found)])[:, :k] if len(found)
           else np.zeros((0, k), np.int64))
    return {"rects": rects, "spec": horses["spec"][found], "component": horses["component"][found],
            "kind": horses["kind"][found], "lime_top": top, "lime_score": lime_score[:len(found)]}


def fidelity_arrays(fidelity: Mapping, domains: Sequence[str]) -> dict:
    """LIME scores and correctness of the adversaries (and horses) of :func:`assemble`."""
    points, horses = fidelity["points"], fidelity.get("horse_points", [])
    return {"score": np.array([p["score"] for p in points], float),
            "correct": np.array([p["correct"] for p in points], bool),
            "domain": np.array([list(domains).index(p["domain"]) for p in points], np.int64),
            "horse_score": np.array([p["score"] for p in horses], float),
            "horse_correct": np.array([p["correct"] for p in horses], bool)}


def results_table(stages: Mapping[str, Mapping], *, head: Mapping, deviations: list,
                  model: Mapping, segmentation: Mapping, attack_settings: Mapping,
                  published: Mapping, num_samples: int, timing: Mapping, stage_summary,
                  domains: Sequence[str], directions: Sequence[str]) -> dict:
    """``results.json`` (without ``listening``) in its key order: ``head`` (study, title,
    preset, seed, data), the headline, ``deviations``, ``model`` (path, width; any further
    entries override :func:`model_summary`'s) with the detector's accuracy, excerpt and
    attack counts, ``segmentation``, ``attack_settings``,
    the tables, controls and fidelity of ``stages["assemble"]``, ``published``, LIME's timing
    (with ``timing``'s extra entries) and ``stage_summary``."""
    exc, n = stages["excerpts"], stages["assemble"]
    adv = {dom: {k: stages[f"adversaries_{dom}_{k}"] for k in directions} for dom in domains}
    attacks = attack_counts(exc["direction"], adv, directions=directions)
    attacks["waveform"].update(median_snr(exc["waves"], list(adv["waveform"].values())))
    lime_seconds = np.concatenate([v["lime_seconds"] for k, v in stages.items()
                                   if k.startswith("lime_")])
    return {
        **head, "headline": headline(n["table1_all"], domains, directions),
        "preset_deviations_from_paper": deviations,
        "model": {"path": model["path"], **model_summary(exc), **model},
        "excerpts": excerpt_counts(exc["direction"], exc["correct"], directions),
        "segmentation": dict(segmentation), "attacks": attacks,
        "attack_settings": dict(attack_settings), **published_tables(n, domains, directions),
        **{k: n[k] for k in ("table1_all", "table2_all", "flip_curves", "stability", "horses",
                             "subset", "fidelity")},
        "published": published, "snr_note": SNR_NOTE,
        "timing": {**lime_timing(lime_seconds, num_samples), "note": TIMING_NOTE, **timing},
        "stages": stage_summary,
    }


def write_report_arrays(folder, stages: Mapping[str, Mapping], results: Mapping, *,
                        domains: Sequence[str], directions: Sequence[str], k: int = 3,
                        n_temporal: int = 5, n_frequency: int = 4) -> None:
    """``folder/{flip_curves,example,horses,fidelity}.npz``; the example is the first audited
    adversary (spectrogram domain first); ``strength_sweep.npz`` (:func:`sweep_arrays`) when
    ``results`` holds a ``strength_sweep``."""

    seg = {"n_temporal": n_temporal, "n_frequency": n_frequency}
    specs = stages["excerpts"]["specs"]
    masks, rects = component_masks(specs.shape[1:], **seg), component_rects(specs.shape[1:], **seg)
    lime_horses = stages["lime_horses"]
    arrays = {"flip_curves": flip_curve_arrays(results["flip_curves"]),
              "horses": horse_arrays(stages["horses"], lime_horses["lime_weights"],
                                     lime_horses["lime_score"], rects, k=k),
              "fidelity": fidelity_arrays(results["fidelity"], domains)}
    for dom, name in ((d, n) for d in sorted(domains, key=lambda d: d != "spectrogram")
                      for n in directions):
        a = stages[f"adversaries_{dom}_{name}"]
        if len(a["audited"]):
            arrays["example"] = example_arrays(
                specs[a["audited"][0]], a["deltas"][0], stages[f"lime_{dom}_{name}"][
                    "lime_weights"][0], masks, rects, domain=dom, direction=name, k=k)
            break
    if "strength_sweep" in results:
        arrays["strength_sweep"] = sweep_arrays(results["strength_sweep"], domains=domains,
                                                directions=directions)
    Path(folder).mkdir(parents=True, exist_ok=True)
    for key in ("flip_curves", "example", "horses", "fidelity", "strength_sweep"):
        if key in arrays:
            np.savez(Path(folder) / f"{key}.npz", **arrays[key])


def listening_clips(out, stages: Mapping[str, Mapping], clf, *, directions: Sequence[str],
                    subfolder: str = "audio") -> list:
    """The first successful waveform adversary of every direction as listening WAVs under
    ``out/subfolder`` (:func:`jaxaudio.data.listening.write_listening_example`), with true
    label, p(sing) before and after, SNR (dB), perturbation gain and files (relative to
    ``out``)."""
    exc, clips = stages["excerpts"], []
    (Path(out) / subfolder).mkdir(parents=True, exist_ok=True)
    for name in directions:
        a = stages[f"adversaries_waveform_{name}"]
        for j in np.flatnonzero(a["success"])[:1]:
            i, adv = int(a["index"][j]), np.clip(a["adversarial"][j], -1, 1)
            w = write_listening_example(Path(out) / subfolder, name, exc["waves"][i], adv,
                                        clf.frontend.sample_rate)
            p_adv = float(jax.nn.sigmoid(clf.logits_fn(adv[None].astype(np.float32)))[0, 0])
            clips.append({"direction": name,
                          "true_label": clf.label_names[int(exc["true_label"][i])],
                          "p_sing_original": float(exc["probability"][i]),
                          "p_sing_adversarial": p_adv,
                          "snr_db": float(metrics.snr_db(exc["waves"][i], adv)),
                          "perturbation_gain": w["perturbation_gain"],
                          "files": {r: f"{subfolder}/{f}" for r, f in w["files"].items()}})
    return clips


def strength_sweep(levels: Sequence[float], tables: Sequence[Mapping], *,
                   domains: Sequence[str], directions: Sequence[str], k: int = 3) -> dict:
    """Table 1 (top-``k`` flip rate of LIME and of the norm-based selection) per adversary
    strength: ``tables[l][domain][direction]`` are table-1 dicts (``lime``, ``norm``,
    ``num_examples``) of level ``l``. Returns ``{"levels", "k", domain: {direction: {"lime":
    [...], "norm": [...], "num_examples": [...]}}}``."""
    out = {"levels": [float(v) for v in levels], "k": int(k)}
    for d in domains:
        out[d] = {n: {key: [t[d][n].get(key) for t in tables]
                      for key in ("lime", "norm", "num_examples")} for n in directions}
    return out


def sweep_arrays(sweep: Mapping, *, domains: Sequence[str], directions: Sequence[str]) -> dict:
    """``{"levels", "<domain>.<direction>.<lime|norm|num_examples>"}`` float arrays (NaN for
    ``None``) of :func:`strength_sweep`."""
    out = {"levels": np.asarray(sweep["levels"], float)}
    for d in domains:
        for n in directions:
            for key, v in sweep[d][n].items():
                out[f"{d}.{n}.{key}"] = np.array([np.nan if x is None else x for x in v], float)
    return out


def sweep_stage(domain: str, level: float) -> str:
    """The stage-output name of the audit of ``domain`` at a sweep level (``audit_<domain>_c0.60``;
    the first level is the main study's ``audit_<domain>``)."""
    return f"audit-{domain}-c{level:.2f}".replace("-", "_")


def stretch_summaries(stages: Mapping[str, Mapping], levels: Sequence[float], *,
                      threshold: float = 0.51, domains: Sequence[str]) -> dict:
    """``{domain: attack_summary}`` (:func:`jaxaudio.audit.stretch.attack_summary`) of the
    stretch attacks ``stages["adversaries_<domain>"]`` against the clean probabilities of
    ``stages["songs"]`` (``p``, ``frame_offsets``)."""
    songs = stages["songs"]
    return {dom: attack_summary(stages[f"adversaries_{dom}"], songs["p"], songs["frame_offsets"],
                                levels, threshold=threshold) for dom in domains}


def sweep_results(stages: Mapping[str, Mapping], table1_all: Mapping, table2_all: Mapping,
                  levels: Sequence[float], *, domains: Sequence[str],
                  directions: Sequence[str], k: int = 3) -> dict:
    """:func:`strength_sweep` over ``levels`` (the first: the main study's ``table1_all`` /
    ``table2_all``; the others: the ``audit`` stages of :func:`sweep_stage`) plus
    ``lime_mean_components[domain][direction]``, LIME's mean count of positive components
    per level (``None`` where a group is empty)."""
    tables = [table1_all] + [
        {dom: {n: stages[sweep_stage(dom, lv)][n]["table1"] for n in directions}
         for dom in domains} for lv in levels[1:]]
    sweep = strength_sweep(levels, tables, domains=domains, directions=directions, k=k)
    sweep["lime_mean_components"] = {
        dom: {n: [table2_all[dom][n].get("lime_mean_components")] + [
            stages[sweep_stage(dom, lv)][n]["table2"].get("lime_mean_components")
            for lv in levels[1:]] for n in directions} for dom in domains}
    return sweep


def preset_deviations(preset, paper: Mapping[str, Optional[object]],
                      names: Optional[Mapping[str, str]] = None) -> list[str]:
    """``"<size> <value> (paper: <paper's>)"`` for every size of ``paper`` where the dataclass
    ``preset`` differs; ``names`` words the paper's ``None`` values (e.g. ``"all test
    songs"``)."""
    names = dict(names or {})
    if not dataclasses.is_dataclass(preset):
        raise TypeError(f"preset must be a dataclass instance, got {type(preset).__name__}")
    return [f"{k} {getattr(preset, k)} (paper: {names.get(k, v) if v is None else v})"
            for k, v in paper.items() if getattr(preset, k) != v]
