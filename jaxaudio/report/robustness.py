"""Report section: channels, robust (EOT) adversaries and the ensemble defence.

Reads only ``results.json`` (the ``robustness`` part written by
:mod:`jaxaudio.studies.attack_robustness`, standalone or inside study 1). :func:`render` draws
the channel-survival table (plain vs robust, with the clean accuracy through each channel as the
control), the cost of robustness, the transfer matrix and the ensemble table, and a
survival figure.
"""

from __future__ import annotations

from pathlib import Path

from jaxaudio.report import page

_NAMES = {"pgd": "PGD", "cw_random": "C&W (random target)"}


def _pct(x):
    return "–" if x is None else f"{100 * x:.0f} %"


def _survival_figure(out_dir: Path, part: dict) -> str:
    table = part.get("channels", {})
    if not table:
        return ""
    fig, ax = page.new_figure(7.5, 3.6)
    names = list(next(iter(table.values()))["plain"])
    width = 0.8 / (2 * len(table))
    for a, (attack, both) in enumerate(table.items()):
        for v, variant in enumerate(("plain", "robust")):
            vals = [both[variant][c]["survival"] for c in names]
            xs = [i + (2 * a + v) * width - 0.4 + width / 2 for i in range(len(names))]
            ax.bar(xs, [0 if x is None else x for x in vals], width,
                   label=f"{_NAMES.get(attack, attack)} {variant}",
                   hatch="//" if variant == "robust" else None)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("share still adversarial")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    ax.grid(axis="y", alpha=0.3)
    path = page.save_figure(fig, out_dir / "figures" / "robustness_survival.png")
    return page.figure(out_dir, path, "Per channel, the share of successful adversaries (on "
                       "clips the classifier got right) that are still adversarial after it; "
                       "hatched bars: the same attack made robust by expectation over "
                       "transformation. A channel that also hurts the clean accuracy (table) "
                       "partly 'succeeds' on its own.", title="Channel survival", wide=True)


def render(out_dir, results: dict) -> str:
    """The section's HTML (``results``: a results dict holding ``robustness``, or that part)."""
    out_dir = Path(out_dir)
    part = results.get("robustness", results)
    html = ["<h2>Channels, robust adversaries and an ensemble defence</h2>"]
    table = part.get("channels", {})
    if table:
        attacks = list(table)
        first = next(iter(table.values()))["plain"]
        header = ["channel", "clean accuracy"] + [
            f"{_NAMES.get(a, a)} {v}" for a in attacks for v in ("plain", "robust")]
        rows = []
        for c, entry in first.items():
            kbps = f" ({entry['kbps']:.0f} kbit/s)" if entry.get("kbps") else ""
            rows.append([c + kbps, entry["clean_accuracy"]] + [
                _pct(table[a][v][c]["survival"]) for a in attacks for v in ("plain", "robust")])
        n = {a: table[a]["plain"][next(iter(first))]["num_successful"] for a in attacks}
        html.append(page.table(header, rows, caption=(
            "Share of successful adversaries still adversarial after each channel (survival), "
            "and the clean accuracy through the channel (the control). Successful adversaries "
            "counted: " + ", ".join(f"{_NAMES.get(a, a)} {n[a]}" for a in attacks))))
        cost = part.get("cost", {})
        html.append(page.table(
            ["attack", "success plain", "success robust", "mean SNR plain (dB)",
             "mean SNR robust (dB)", "SNR cost (dB)", "median iterations plain",
             "median iterations robust"],
            [[_NAMES.get(a, a), c.get("plain_success_rate"), c.get("robust_success_rate"),
              c.get("plain_snr_db_mean"), c.get("robust_snr_db_mean"), c.get("snr_cost_db"),
              c.get("plain_iterations_median"), c.get("robust_iterations_median")]
             for a, c in cost.items()],
            caption="The cost of robustness: success on the plain classifier and SNR of the "
                    "successful adversaries, plain vs robust (EOT over "
                    + ", ".join(part.get("settings", {}).get("eot_transforms", [])) + ", "
                    f"{part.get('settings', {}).get('eot_draws', '?')} draws per step)."))
        html.append(page.figures([_survival_figure(out_dir, part)]))
    ens = part.get("ensemble", [])
    if ens:
        src = part.get("source", {})
        rows = [["source (single net, full split)", src.get("clean_accuracy"),
                 src.get("fgsm_accuracy"), src.get("pgd_accuracy"), "–", "–"]]
        rows += [[f"ensemble of {r['size']}", r["clean_accuracy"],
                  r["transferred_fgsm_accuracy"], r["transferred_pgd_accuracy"],
                  r["whitebox_fgsm_accuracy"], r["whitebox_pgd_accuracy"]] for r in ens]
        eps = part.get("settings", {}).get("fgsm_eps")
        html.append(page.table(
            ["classifier", "clean accuracy", "FGSM from source", "PGD from source",
             "white-box FGSM", "white-box PGD"], rows,
            caption="Accuracy on the attacked clips. 'From source': adversaries crafted on the "
                    "study's own classifier and fed to the ensemble (for the source row: its "
                    f"own white-box accuracy). FGSM eps {eps}; PGD with study 1's settings. "
                    "Members: bootstrap resamples of the training split (about "
                    f"{_pct(part.get('members', {}).get('resample_fraction'))} of the clips "
                    "each), mean logits."))
    tr = part.get("transfer")
    if tr:
        nets = tr["networks"]
        html.append(page.table(["crafted on \\ evaluated on"] + nets, [
            [nets[i]] + [("–" if v is None else _pct(v)) for v in row]
            for i, row in enumerate(tr["matrix"])],
            caption="Transfer of PGD adversaries: share of network i's successful adversaries "
                    "(on clips both networks classify correctly) that also fool network j. "
                    f"Mean member to member {_pct(tr.get('member_to_member_mean'))}, source to "
                    f"members {_pct(tr.get('source_to_member_mean'))}."))
    secs = part.get("seconds")
    if secs:
        html.append(page.table(["part", "seconds"], [[k, v] for k, v in secs.items()],
                               caption="Run time of each part (computed stages only; reused "
                                       "stages count their original run)."))
    return "".join(html)
