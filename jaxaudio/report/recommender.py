"""Report page of study 4 (the music recommender's hubs): from ``results.json``,
``arrays/hubness.npz`` and ``audio/``.

Hubness of the collection with and without Mutual Proximity (table, k-occurrence histogram),
the attack table next to the published figures, the white-noise control, the defence, and
listening examples. Reads files only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxaudio.report import page

_SYSTEMS = (("kl", "KL (published matrix)"), ("mp_gaussian", "Mutual Proximity, Gaussian"),
            ("mp_empirical", "Mutual Proximity, empirical"))

_HIST_CAPTION = (
    "How often each song is recommended (k-occurrence: appearances in the other songs' 5 "
    "nearest neighbours), without and with Mutual Proximity. A long right tail (songs far right "
    "of the dotted hub threshold) is hubness: a few songs recommended next to very many others "
    "while many (k-occurrence 0) are never recommended. Mutual Proximity works if it pulls the "
    "tail in.")


def _draw(out_dir: Path, results: dict, arrays: dict) -> Path:
    fig, ax = page.new_figure(8, 4)
    hub_size = results["method"]["hub_size"]
    top = max(int(max(arrays[f"k_occurrence_{s}"].max() for s, _ in _SYSTEMS)), hub_size) + 1
    bins = np.arange(0, top + 2) - 0.5
    for (s, label), color in zip(_SYSTEMS, ("tab:red", "tab:green", "tab:blue")):
        ax.hist(arrays[f"k_occurrence_{s}"], bins=bins, histtype="step", lw=1.5, color=color,
                label=label)
    ax.axvline(hub_size, color="gray", ls=":", label=f"hub threshold {hub_size}")
    ax.set_yscale("log")
    ax.set_xlabel("k-occurrence (k = %d)" % results["method"]["k"])
    ax.set_ylabel("songs")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return page.save_figure(fig, out_dir / "figures" / "k_occurrence.png")


def _range(r):
    return "–" if not r else f"{r['median']:g} ({r['min']}–{r['max']})"


def _attack_table(results: dict) -> str:
    header = ["attack", "recommender", "objective", "target hub", "songs", "conversion",
              "k-occ before", "k-occ after", "SNR of successes (dB)", "iterations (median)",
              "hubs in the other recommender"]
    rows = []
    for name, s in results["summary"].items():
        rows.append([name, s["system"], s["objective"], s["target_strategy"], s["attacked"],
                     page.fmt(s["conversion_rate"], 2), _range(s["k_occurrence_before"]),
                     _range(s["k_occurrence_after"]),
                     page.fmt(s["snr_db_mean"], 1, std=s["snr_db_std"]),
                     page.fmt(s["iterations_median"], 0), s["hubs_in_other_system"]])
    pub = results["published"]
    published = [["published examples", "kl", "kl", "closest", "–", "–", "1, 4, 19",
                  "44, 202, 64", pub["snr_db_of_successes"], "–", "–"],
                 ["published defence", "kl → mp", "kl", "closest", "–", "≈0.44 → <0.06",
                  "–",
                  "–", "lower with MP", "–", "–"]]
    return page.table(header, rows, published=published,
                      caption="measured (top) and published (grey)")


def _hubness_table(results: dict) -> str:
    rows = [[label, h["num_hubs"], page.fmt(h["skewness"], 2), h["max_k_occurrence"],
             h["num_anti_hubs"]]
            for key, label in _SYSTEMS for h in [results["hubness"][key]]]
    sym = results["hubness"]["kl_symmetric"]
    rows.append(["KL (symmetrised)", sym["num_hubs"], page.fmt(sym["skewness"], 2),
                 sym["max_k_occurrence"], sym["num_anti_hubs"]])
    return page.table(["recommender", f"hubs (k-occ ≥ {results['method']['hub_size']})",
                       "skewness of k-occurrence", "largest k-occurrence",
                       "never recommended"], rows)


def _warnings(results: dict) -> list:
    out = []
    if results["hubness"]["kl"]["num_hubs"] == 0:
        out.append("the collection has no hub: the attacks target the most recommended song "
                   "instead (a bigger collection, e.g. the demo preset, has hubs)")
    for name, s in results["summary"].items():
        if s["attacked"] < 5:
            out.append(f"{name}: only {s['attacked']} attacked song(s): the conversion rate is "
                       "a rough estimate")
    return out


def render(out_dir, results: dict) -> str:
    out_dir = Path(out_dir)
    arrays = page.read_arrays(out_dir / "arrays" / "hubness.npz")
    png = _draw(out_dir, results, arrays)
    c = results["collection"]
    noise = results["noise_control"]
    dev = results.get("preset_deviations_from_paper") or []
    clips = []
    for name, rows in results.get("listening", {}).items():
        for r in rows:
            folder = out_dir / "audio" / name
            clips.append({"title": f"{name}: {r['name']}",
                          "facts": {"k-occurrence": r["k_occurrence"], "SNR (dB)": r["snr_db"],
                                    "perturbation gain": r["perturbation_gain"]},
                          "players": [(role, folder / f) for role, f in r["files"].items()]})
    parts = [
        f'<p class="lead">{page.esc(results.get("headline", ""))}</p>',
        f"<p>Collection: {page.esc(c['source'])}, {c['num_songs']} songs of "
        f"{c['seconds_per_song']:.1f} s" + (f" ({page.esc(', '.join(c['genres']))})"
                                            if c["genres"] else "") + ".</p>",
        (f'<p class="note">Preset <b>{page.esc(results["preset"])}</b> deviates from the '
         f'paper: {page.esc("; ".join(dev))}.</p>') if dev else "",
        "<section><h2>Hubness</h2>", _hubness_table(results),
        page.figures([page.figure(out_dir, png, _HIST_CAPTION, title="k-occurrence")]),
        "</section>",
        "<section><h2>Attacks: turning songs into hubs</h2>", _attack_table(results),
        page.warnings(_warnings(results)),
        f"<p>White-noise control at {noise['snr_db']:g} dB SNR on the songs of the first "
        f"attack: {noise['hubs_created']} hub(s) created; k-occurrence "
        f"{noise['k_occurrence_before']} → {noise['k_occurrence_after']} (published: "
        f"{page.esc(results['published']['noise_control'])}).</p>",
        f"<p>Defence (published): {page.esc(results['published']['mutual_proximity'])}. Rows "
        "with recommender mp_* attack the Mutual-Proximity recommender: the same KL attack "
        "(success judged there) and an MP-aware one (objective and decision through MP); the "
        "last column re-checks each attack's adversaries in the other recommender.</p>",
        "</section>"]
    if clips:
        parts += ["<section><h2>Listening examples</h2>", page.listening(out_dir, clips),
                  "</section>"]
    return "\n".join(parts)
