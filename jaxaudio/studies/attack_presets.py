"""Study 1's presets, attack names and options (:mod:`jaxaudio.studies.instrument_attacks`).

Every preset runs the paper's attack settings (docs/studies.md §1); presets change sizes only
(clips, excerpt length, seeds, iteration budgets, sweep points, parallel slots). ``--set
ATTACK.KEY=VALUE`` changes one attack setting (:func:`apply_overrides`); :func:`study_options`
validates a run's options into a preset and the attacks selected.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from jaxaudio.attacks import DEFAULT_FFT_SIZES, registry
from jaxaudio.studies import common

__all__ = ["PUBLISHED", "ATTACKS", "PSY", "ALL_ATTACKS", "STOCHASTIC", "SEEDED_RUNS",
           "TARGETED", "registry_name", "attack_function", "StudyPreset", "PSY_SETTINGS",
           "STUDY_PRESETS", "apply_overrides", "study_options"]

#: The published table (technical report, 200 validation clips, clean accuracy 0.835).
_ROW = ("accuracy_after", "snr_db_mean", "iterations_median", "settings")
_CW_ROW = ("0.18–0.23", "44.2 ± 10.8", "52", "clip 0.01, alpha 0.01, lr 1e-5")  # both variants
PUBLISHED = {"clean_accuracy": 0.835, **{name: dict(zip(_ROW, row)) for name, row in (
    ("fgsm", ("0.25", "−7.7", "1", "eps 0.1")),
    ("pgd", ("0.17", "40.1 ± 11.5", "16", "eps 0.0005, lr 1e-5")),
    ("cw", _CW_ROW), ("cw_random", _CW_ROW),
    ("mscw", ("0.16–0.19", "43.8 ± 10.4", "70", "clip 0.01, alpha 10, lr 1e-5")))},
    "noise_control": "white noise at 42 dB leaves 0.79 (clean 0.835); at −8 dB 0.11"}

#: The paper's attacks by the registry's short names (:mod:`jaxaudio.attacks.registry`), and
#: the study's variant ``cw_random``: C&W towards a random other class (``cw``: a fixed one).
ATTACKS = ("fgsm", "pgd", "cw", "cw_random", "mscw")
#: The psychoacoustic attack (not in the paper): a study option (``--psychoacoustic``).
PSY = "psy"
ALL_ATTACKS = ATTACKS + (PSY,)
STOCHASTIC = ("pgd", "cw_random", "mscw", PSY)  # seeded key (random start / target)
SEEDED_RUNS = ("pgd", "cw_random")  # run over several seeds
TARGETED = ("cw", "cw_random", "mscw")


def registry_name(name: str) -> str:
    """The registry's short name of study attack ``name`` (``cw_random`` runs ``cw``)."""
    return name.removesuffix("_random")


def attack_function(name: str):
    """The public attack function study attack ``name`` runs, from the attacks registry."""
    return registry.get(registry_name(name)).function


_UNKNOWN = sorted({registry_name(n) for n in ALL_ATTACKS} - set(registry.cli_names()))
if _UNKNOWN:
    raise RuntimeError(f"study 1 names attacks the registry does not offer: {_UNKNOWN}")


@dataclasses.dataclass(frozen=True)
class StudyPreset:
    """Sizes and attack settings of one preset (``paper`` = docs/studies.md §1): ``num_clips`` test
    clips (None = all) cut to ``clip_seconds`` (None = the classifier's excerpt); ``seeds`` runs
    of PGD and C&W-random; the headline FGSM ``fgsm_eps`` and its sweep; the attacks' keyword
    arguments (``cw`` also for C&W-random); the fixed ``cw_target``; early-stopping ``slots``;
    ``listening_examples`` per attack; ``deviations`` from the paper, and why; the
    psychoacoustic attack's keyword arguments ``psy`` and whether it runs (``psychoacoustic``);
    ``perceptual_clips``: ViSQOL scores the first this many attacked clips (None = all)."""

    num_clips: Optional[int]
    clip_seconds: Optional[float]
    seeds: int
    fgsm_eps: float
    fgsm_epsilons: tuple[float, ...]
    pgd: dict
    cw: dict
    mscw: dict
    cw_target: str = "Accordion"
    slots: int = 32
    listening_examples: int = 3
    deviations: tuple[str, ...] = ()
    psy: dict = dataclasses.field(default_factory=lambda: dict(PSY_SETTINGS))
    psychoacoustic: bool = True
    perceptual_clips: Optional[int] = None

    def reported_settings(self) -> dict:
        """Each attack's settings as ``results.json`` reports them."""
        return {"fgsm": {"eps": self.fgsm_eps}, "pgd": dict(self.pgd, random_start=True),
                "cw": dict(self.cw, target=self.cw_target),
                "cw_random": dict(self.cw, target="random"),
                "mscw": dict(self.mscw, target="random", fft_sizes=list(DEFAULT_FFT_SIZES)),
                PSY: dict(self.psy, stage1="pgd", random_start=True)}

    def attack_kwargs(self, label_names: Sequence[str], sample_rate: int) -> dict:
        """Each attack's keyword arguments as its stage records them (``cw`` towards the index
        of :attr:`cw_target` in ``label_names``; ``psy`` at the model's ``sample_rate``)."""
        names = list(label_names)
        if self.cw_target not in names:
            raise ValueError(f"C&W target {self.cw_target!r} is not a class of the model {names}")
        return {"fgsm": {"eps": self.fgsm_eps}, "pgd": dict(self.pgd, slots=self.slots),
                "cw": dict(self.cw, slots=self.slots, target=names.index(self.cw_target)),
                "cw_random": dict(self.cw, slots=self.slots, target="random"),
                "mscw": dict(self.mscw, slots=self.slots, target="random"),
                PSY: dict(self.psy, slots=self.slots, sample_rate=int(sample_rate))}

    def max_iterations(self, name: str) -> int:
        """The step budget of attack ``name`` (FGSM: 1; psy: its stage 1's)."""
        return (1 if name == "fgsm" else self.psy["stage1_iterations"] if name == PSY
                else getattr(self, name.replace("_random", ""))["max_iterations"])

    def psy_reuses_pgd(self, selected: Sequence[str]) -> bool:
        """Whether the psychoacoustic attack's stage 1 is exactly the study's PGD (seed 0)."""
        return "pgd" in selected and (self.psy["eps"], self.psy["stage1_learning_rate"],
                                      self.psy["stage1_iterations"]) == (
            self.pgd["eps"], self.pgd["learning_rate"], self.pgd["max_iterations"])


#: The psychoacoustic attack's settings (every preset): stage 1 = the study's PGD, stage 2 = 200
#: steps of hinge + alpha · class loss (docs/studies.md §1).
PSY_SETTINGS = dict(eps=5e-4, stage1_learning_rate=1e-5, stage1_iterations=500,
                    learning_rate=1e-5, max_iterations=200, alpha=0.1, check_every=20)

_PAPER_SWEEP = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)


def _settings(lr: float, *, pgd_eps: float, cw_alpha: float, clip_eps: float = 0.01,
              iterations=(500, 500, 500)) -> dict:
    """``pgd``/``cw``/``mscw`` keyword arguments sharing one learning rate."""
    return {"pgd": dict(eps=pgd_eps, learning_rate=lr, max_iterations=iterations[0]),
            "cw": dict(clip_eps=clip_eps, alpha=cw_alpha, learning_rate=lr,
                       max_iterations=iterations[1]),
            "mscw": dict(clip_eps=clip_eps, alpha=10.0, learning_rate=lr,
                         max_iterations=iterations[2])}


STUDY_PRESETS: dict[str, StudyPreset] = {
    "paper": StudyPreset(None, None, seeds=5, fgsm_eps=0.1, fgsm_epsilons=_PAPER_SWEEP,
                         **_settings(1e-5, pgd_eps=5e-4, cw_alpha=0.01)),
    "demo": StudyPreset(
        48, 3.0, seeds=2, fgsm_eps=0.1, fgsm_epsilons=_PAPER_SWEEP, slots=16, perceptual_clips=16,
        **_settings(1e-5, pgd_eps=5e-4, cw_alpha=0.01),
        deviations=("48 test clips cut to 3-s excerpts, 2 seeds (paper: 200 whole clips, "
                    "5 seeds); the classifier is the demo's (width 16, 20 epochs; paper: "
                    "width 64, up to 200 epochs)",)),
    "smoke": StudyPreset(
        8, 0.5, seeds=2, fgsm_eps=0.1, fgsm_epsilons=(1e-3, 1e-2, 0.1), slots=4,
        listening_examples=1, **_settings(1e-5, pgd_eps=5e-4, cw_alpha=0.01, iterations=(8, 8, 8)),
        psy=dict(PSY_SETTINGS, stage1_iterations=8, max_iterations=8),
        perceptual_clips=2,
        deviations=("smoke test: 8 clips of 0.5 s, 2 seeds, at most 8 iterations and a "
                    "2-epoch width-8 classifier; the numbers are not meaningful",)),
}


def apply_overrides(sp: StudyPreset, overrides: Optional[Sequence[str]]) -> StudyPreset:
    """``sp`` with ``--set ATTACK.KEY=VALUE`` items applied (values are numbers)."""
    for item in overrides or ():
        target, _, value = str(item).partition("=")
        attack, _, key = target.partition(".")
        field = attack if attack in ("pgd", "cw", "mscw", "fgsm", PSY) else None
        known = ("eps",) if field == "fgsm" else tuple(getattr(sp, field)) if field else ()
        if not value or field is None or key not in known:
            raise ValueError(f"--set expects ATTACK.KEY=VALUE with ATTACK in fgsm, pgd, cw, mscw, "
                             f"psy "
                             f"and KEY one of its settings {known or ''}, got {item!r}")
        try:
            number = int(value) if value.lstrip("+-").isdigit() else float(value)
        except ValueError:
            raise ValueError(f"--set {target}: value must be a number, got {value!r}") from None
        if key in ("max_iterations", "stage1_iterations", "check_every") and (
                not isinstance(number, int) or number < 1):
            raise ValueError(f"--set {target}: must be an integer >= 1, got {value!r}")
        if field == "fgsm":
            sp = dataclasses.replace(sp, fgsm_eps=float(number))
        else:
            sp = dataclasses.replace(sp, **{field: {**getattr(sp, field), key: number}})
    return sp


def study_options(preset, seeds=None, num_clips=None, overrides=None, attacks=None,
                  psychoacoustic=None) -> tuple[StudyPreset, tuple]:
    """The preset with ``seeds``/``num_clips``/``--set`` applied, and the attacks selected in
    :data:`ALL_ATTACKS` order (``psy`` by default when ``psychoacoustic``, None = the preset's
    choice)."""
    sp = common.choose_preset(preset, STUDY_PRESETS)
    for name, value in (("seeds", seeds), ("num_clips", num_clips)):
        if value is not None:
            sp = dataclasses.replace(sp, **{name: common.check_count(value, name)})
    if psychoacoustic is not None:
        sp = dataclasses.replace(sp, psychoacoustic=bool(psychoacoustic))
    default = ALL_ATTACKS if sp.psychoacoustic else ATTACKS
    selected = default if attacks is None else [attacks] if isinstance(attacks, str) else [*attacks]
    if not selected or any(a not in ALL_ATTACKS for a in selected):
        raise ValueError(f"--attacks must be a non-empty selection of {ALL_ATTACKS}, got "
                         f"{attacks!r}")
    if psychoacoustic is False:
        selected = [a for a in selected if a != PSY]
        if not selected:
            raise ValueError("--attacks psy with --no-psychoacoustic leaves no attack to run")
    return apply_overrides(sp, overrides), tuple(a for a in ALL_ATTACKS if a in selected)
