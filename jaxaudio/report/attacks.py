"""Report page of study 1 (instrument attacks), drawn from the study folder's files only.

Reads ``results.json``, ``arrays/confusion.npz`` (true labels and predictions: clean and after
each attack, seed 0), ``arrays/snr.npz`` (SNR of every successful adversary, all seeds, per
attack), ``arrays/fgsm_sweep.npz`` (success / accuracy / mean SNR per eps) and the listening
WAVs under ``audio/<attack>/``; draws ``figures/*.png`` and returns the page body.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxaudio.report import page

__all__ = ["render"]

_ORDER = ("fgsm", "pgd", "cw", "cw_random", "mscw", "psy")


def _label(name: str, results: dict) -> str:
    target = results.get("method", {}).get("cw_fixed_target", "fixed target")
    return {"fgsm": "FGSM", "pgd": "PGD", "cw": f"C&W → {target}",
            "cw_random": "C&W → random other", "mscw": "multi-scale C&W → random",
            "psy": "psychoacoustic (PGD, then masked)"}.get(name, name)


def _attacks(results: dict) -> list[str]:
    attacks = results.get("attacks", {})
    return [n for n in _ORDER if n in attacks]


def _settings_text(settings: dict) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in settings.items() if k not in ("fft_sizes", "random_start"))


# ---------------------------------------------------------------------------------- table
def _headline_table(results: dict) -> str:
    header = ("attack", "settings", "success", "accuracy after", "mean SNR ± std (dB)",
              "median iterations", "noise at mean SNR: accuracy", "success on WAV", "seeds",
              "seconds") + _PERCEPTUAL_HEADER
    rows, published = [], []
    for name in _attacks(results):
        e = results["attacks"][name]
        seeds = e.get("seeds", 1)
        rows.append((
            _label(name, results) + (f" (n={e['n']})" if name == "cw" else ""),
            _settings_text(e.get("settings", {})),
            page.fmt(e["success_rate"], std=e.get("success_rate_std") if seeds > 1 else None),
            page.fmt(e["accuracy_after"],
                     std=e.get("accuracy_after_std") if seeds > 1 else None),
            page.fmt(e["snr_db_mean"], 1, std=e.get("snr_db_std")),
            page.fmt(e["iterations_median"], 1),
            page.fmt(e.get("noise_control_accuracy")),
            page.fmt(e.get("wav_success_rate")) + (" (seed 0)" if seeds > 1 else ""),
            seeds, page.fmt(e.get("seconds"), 1)) + _perceptual_cells(e))
        pub = e.get("published") or {}
        if pub:
            published.append((f"published: {_label(name, results)}", pub.get("settings", ""),
                              "", pub.get("accuracy_after", ""), pub.get("snr_db_mean", ""),
                              pub.get("iterations_median", ""), "", "", "", "")
                             + ("",) * len(_PERCEPTUAL_HEADER))
    caption = ("Measured (top) and published by Prinz & Flexer 2020 (greyed). Success: "
               "untargeted — the prediction differs from the true label; targeted — it is the "
               "target; measured on exactly the returned adversarial, and again after writing "
               "it as a 16-bit WAV file and reading it back. Success and accuracy: mean ± std "
               "over seeds; SNR and iterations over the successful adversaries of all seeds. "
               + _PERCEPTUAL_CAPTION)
    return page.table(header, rows, published=published, caption=caption)


def _lead(results: dict) -> str:
    clips = results.get("attacked_clips", {})
    pub = results.get("published", {})
    text = (f"Clean accuracy {page.fmt(results.get('clean_accuracy'))} on the whole test split "
            f"(clip level; published {page.fmt(pub.get('clean_accuracy'))}). Attacked: "
            f"{clips.get('n', '–')} excerpts of {page.fmt(clips.get('seconds'), 2)} s, clean "
            f"accuracy {page.fmt(results.get('clean_accuracy_attacked'))}; chance "
            f"{page.fmt(results.get('chance'))}. Noise column: white noise at each attack's mean "
            "SNR — accuracy near the clean value means the adversaries work by where they put "
            "their energy, not by how much there is. Published: "
            f"{pub.get('noise_control', '–')}.")
    return f'<p class="lead">{page.esc(text)}</p>'


def _deviations(results: dict) -> str:
    items = results.get("preset_deviations_from_paper") or []
    if not items:
        return ""
    lis = "".join(f"<li>{page.esc(d)}</li>" for d in items)
    return (f'<p class="note">Preset <b>{page.esc(results.get("preset", ""))}</b> deviates from '
            f'the paper:</p><ul class="note">{lis}</ul>')


# ----------------------------------------------------------------- perceptual quality (A/B)
_PERCEPTUAL_HEADER = ("ViSQOL MOS-LQO (seed 0)", "share above masking threshold")
_PERCEPTUAL_CAPTION = (
    "ViSQOL: audio-mode MOS-LQO of adversarial against original at 48 kHz, 1 (bad) to about "
    "4.7 (identical), mean over the successful adversaries of seed 0 in the scored subset "
    "(n). Share above masking threshold: the share of the perturbation's spectral energy "
    "above the clean clip's frequency-masking threshold, 0 = all masked; mean over the "
    "successful adversaries of seed 0. The psychoacoustic attack (not in the paper) starts "
    "from PGD's adversary and pushes its perturbation under that threshold.")


def _perceptual_cells(e: dict) -> tuple:
    mos = e.get("visqol_mos_mean")
    return ((page.fmt(mos, 2) + f" (n={e['visqol_n']})") if mos is not None else "–",
            page.fmt(e.get("share_above_threshold_mean"), 4))


def _ab_listening(out_dir: Path, results: dict) -> str:
    """A/B: per attack its first listening example, original (A) against adversarial (B), with
    SNR, ViSQOL MOS and the share above the masking threshold under each."""
    clips = []
    for name in _attacks(results):
        for ex in results.get("listening_examples", {}).get(name, [])[:1]:
            folder, stem = out_dir / "audio" / name, f"clip{int(ex['clip']):03d}"
            clips.append({
                "title": f"{_label(name, results)} · clip {ex['clip']}",
                "facts": {"SNR (dB)": page.fmt(ex.get("snr_db"), 1),
                          "ViSQOL MOS": page.fmt(ex.get("visqol_mos"), 2),
                          "share above threshold": page.fmt(ex.get("share_above_threshold"), 4)},
                "players": [("A: original", folder / f"{stem}_original.wav"),
                            ("B: adversarial", folder / f"{stem}_adversary.wav")]})
    if not clips:
        return ""
    return ("<h2>A/B listening: original against adversarial</h2><p class=\"note\">One clip "
            "per attack: play A, then B. At the same SNR a perturbation under the masking "
            "threshold (share near 0, MOS near the ceiling of about 4.7) is the harder one to "
            "hear.</p>" + page.listening(out_dir, clips))


# ------------------------------------------------------------------------------- warnings
def _warnings(results: dict) -> list[str]:
    out = []
    clean, chance = results.get("clean_accuracy_attacked"), results.get("chance") or 0.0
    if clean is not None and (clean < 0.5 or clean < 2 * chance):
        out.append(f"The attacked excerpts' clean accuracy is {clean:.3f} (chance "
                   f"{chance:.3f}): the classifier gets most of them wrong before any attack, "
                   "so success rates mostly count clips that were already misclassified.")
    for name in _attacks(results):
        e, label = results["attacks"][name], _label(name, results)
        zero = e.get("success_at_0_iterations_rate") or 0.0
        if e["success_rate"] == 0:
            out.append(f"{label} found no adversary: its SNR, iterations and noise-control "
                       "cells are empty.")
            continue
        if not e.get("targeted") and zero > 0:
            on_correct = e.get("success_rate_on_clean_correct")
            out.append(f"{label}: success {e['success_rate']:.3f} counts clips that were "
                       f"already misclassified (success at 0 iterations: {zero:.3f} of the "
                       "runs); success_rate_on_clean_correct = "
                       + ("– (no attacked clip was classified correctly)" if on_correct is None
                          else f"{on_correct:.3f}") + ".")
        elif zero > 0:
            out.append(f"{label}: {zero:.3f} of the runs succeeded at 0 iterations (the clip "
                       "was already predicted as the target).")
        if e["snr_db_mean"] is None:
            out.append(f"{label}: mean SNR empty — every successful adversary equals its "
                       "original (no step was taken).")
    if not any(results.get("listening_examples", {}).values()):
        out.append("No listening examples: no attack succeeded on a clip after at least one "
                   "step.")
    return out


# -------------------------------------------------------------------------------- figures
def _confusion_png(path: Path, true, pred, names: list, title: str) -> Path:
    k = len(names)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (np.asarray(true, np.int64), np.asarray(pred, np.int64)), 1)
    fig, ax = page.new_figure(6.4, 5.8)
    ax.imshow(cm, cmap="Blues", vmin=0)
    for i, j in zip(*np.nonzero(cm)):
        ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=10,
                color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(k), names, rotation=50, ha="right", fontsize=9)
    ax.set_yticks(range(k), names, fontsize=9)
    ax.set_xlabel("prediction", fontsize=10)
    ax.set_ylabel("true class", fontsize=10)
    ax.set_title(title, fontsize=11)
    return page.save_figure(fig, path)


def _snr_png(path: Path, snr: dict, results: dict) -> Path:
    fig, ax = page.new_figure(7.0, 4.0)
    finite = {n: v[np.isfinite(v)] for n, v in snr.items()}
    finite = {n: v for n, v in finite.items() if v.size}
    if finite:
        allv = np.concatenate(list(finite.values()))
        bins = np.linspace(allv.min() - 1, allv.max() + 1, 30)
        for name, v in finite.items():
            ax.hist(v, bins=bins, histtype="step", linewidth=1.6,
                    label=f"{_label(name, results)} (n={v.size})")
        ax.legend(fontsize=9)
    else:
        ax.text(0.5, 0.5, "no successful adversary with a finite SNR", ha="center",
                transform=ax.transAxes)
    ax.set_xlabel("SNR of successful adversaries (dB)")
    ax.set_ylabel("adversaries")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title("SNR histogram (all seeds)")
    return page.save_figure(fig, path)


def _sweep_png(path: Path, sweep: dict) -> Path:
    eps = sweep["epsilons"]
    fig, ax = page.new_figure(7.0, 4.0)
    ax.semilogx(eps, sweep["success_rate"], marker="o", label="success rate")
    ax.semilogx(eps, sweep["accuracy_after"], marker="s", label="accuracy after")
    ax.set_xlabel("FGSM eps (full scale = 1)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("fraction of clips")
    ax2 = ax.twinx()
    ax2.semilogx(eps, sweep["snr_db_mean"], color="gray", linestyle="--", marker=".")
    ax2.set_ylabel("mean SNR of successes (dB, dashed)", color="gray")
    ax.legend(loc="center left", fontsize=9)
    ax.set_title("FGSM: success vs eps (one compiled sweep)")
    return page.save_figure(fig, path)


def _figures(out_dir: Path, results: dict) -> str:
    arrays, figs = out_dir / "arrays", out_dir / "figures"
    conf = page.read_arrays(arrays / "confusion.npz")
    names = list(results.get("label_names") or
                 [str(i) for i in range(int(round(1 / results["chance"])))])
    parts = [page.figure(out_dir, _confusion_png(
        figs / "confusion_clean.png", conf["clean_labels"], conf["clean_prediction"], names,
        f"clean excerpts (n={len(conf['clean_labels'])})"), title="Clean excerpts", caption=(
        "Rows: true class; columns: the prediction before any attack. Counts off the diagonal "
        "were misclassified already; an attack's success on those clips costs nothing."))]
    for name in _attacks(results):
        label = _label(name, results)
        true, pred = conf[f"{name}_labels"], conf[f"{name}_prediction"]
        png = _confusion_png(figs / f"confusion_{name}.png", true, pred, names,
                             f"after {label} (seed 0, n={len(true)})")
        what = ("the counts pile into the target's column" if name == "cw" else
                "each clip moves to its (random) target's column" if name in ("cw_random", "mscw")
                else "the counts leave the diagonal")
        parts.append(page.figure(out_dir, png, title=f"Confusion after {label}", caption=(
            f"Rows: true class; columns: the prediction after the attack. Where it works, {what}; "
            "what stays on the diagonal survived the attack.")))
    snr = page.read_arrays(arrays / "snr.npz")
    parts.append(page.figure(out_dir, _snr_png(figs / "snr_histogram.png", snr, results),
                             title="SNR of the successful adversaries", caption=(
        "SNR = 20 log10(‖x‖ / ‖x − x_adv‖) without the first and last 2048 samples; 40 dB means "
        "the perturbation has 1 % of the signal's amplitude. Further right = quieter. Published "
        "means: PGD 40.1, C&W 44.2, multi-scale C&W 43.8 dB; FGSM at eps 0.1 −7.7 dB.")))
    if (arrays / "fgsm_sweep.npz").is_file():
        sweep = page.read_arrays(arrays / "fgsm_sweep.npz")
        parts.append(page.figure(out_dir, _sweep_png(figs / "fgsm_success_vs_eps.png", sweep),
                                 title="FGSM success vs eps", caption=(
            "One signed-gradient step of size eps: success rises and accuracy falls with eps "
            "while the SNR (dashed, right axis) drops by 20 dB per decade. Read where success "
            "crosses 0.5 and the SNR there: a larger eps fools more clips only by being louder.")))
    return page.figures(parts)


# ------------------------------------------------------------------------------ listening
def _listening(out_dir: Path, results: dict) -> str:
    clips = []
    for name in _attacks(results):
        for ex in results.get("listening_examples", {}).get(name, []):
            folder, stem = out_dir / "audio" / name, f"clip{int(ex['clip']):03d}"
            gain = ex["perturbation_gain"]
            clips.append({
                "title": f"{_label(name, results)} · clip {ex['clip']}",
                "facts": {"true": ex["true"], "prediction after attack": ex["adversarial"],
                          "SNR (dB)": page.fmt(ex.get("snr_db"), 1)},
                "players": [("original", folder / f"{stem}_original.wav"),
                            ("adversarial", folder / f"{stem}_adversary.wav"),
                            (f"perturbation ×{gain:g}", folder / f"{stem}_perturbation.wav")]})
    if not clips:
        return ""
    return ("<h2>Listening examples</h2><p class=\"note\">Per clip: the original excerpt, the "
            "adversarial (16-bit WAV, as saved) and the perturbation amplified by the factor "
            "shown.</p>" + page.listening(out_dir, clips))


def multilabel_section(results: dict) -> str:
    """The multi-label section (``--multilabel``): the tagger's test figures and, per goal and
    attack, success rate, SNR and iterations on the test excerpts with two or more tags."""
    ml = results.get("multilabel")
    if not ml:
        return ""
    t = ml["tagger"]
    rows = [[g["goal"], g["attack"].upper().replace("CW", "C&W"), g["num_clips"],
             page.fmt(g["success_rate"]), page.fmt(g["snr_db_mean"], 1, std=g["snr_db_std"]),
             page.fmt(g["iterations_median"], 0)] for g in ml["goals"].values()]
    return ("<h2>Multi-label tagger: attacks on its tag sets</h2>"
            f"<p>A multi-label tagger (the same network, one sigmoid per label, binary "
            f"cross-entropy; {100 * ml['mixed_share']:.0f}% of its training clips carry two "
            f"instruments) reaches lwlrap {t['test_lwlrap']:.3f}, macro ROC-AUC "
            f"{t['test_roc_auc']:.3f} on {t['num_test_clips']} mixed test clips. Attacked: "
            f"{ml['num_clips']} test excerpts with two or more tags (exact tag set predicted on "
            f"{t['excerpt_tag_exact_match']:.2f} of them). Goals: remove the most probable "
            "predicted tag; add the most probable absent one; replace the predicted set by "
            "another clip's true set; change the predicted set (untargeted). Success is judged "
            "on the 16-bit adversarial; SNR over successful ones; iterations: median.</p>"
            + page.table(["goal", "attack", "clips", "success rate", "SNR (dB)",
                          "iterations"], rows))


def render(out_dir, results: dict) -> str:
    """The page body of a finished instrument-attack folder (see the module docstring)."""
    out_dir = Path(out_dir)
    return ("<h2>Attacks on the instrument classifier (docs/studies.md §1)</h2>"
            + _lead(results) + _headline_table(results) + _deviations(results)
            + page.warnings(_warnings(results))
            + "<h2>Figures</h2>" + _figures(out_dir, results) + _ab_listening(out_dir, results)
            + _listening(out_dir, results) + multilabel_section(results))
