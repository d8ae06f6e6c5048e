"""The one table of attacks: name -> public function, factory, defaults, aliases.

Everything that names an attack reads this table: the package's ``__all__``
(:mod:`jaxaudio.attacks`), :func:`make_attack` (the compiled core by name), the command line's
``jaxaudio attack --audio --attack`` choices (:data:`jaxaudio.cli.attack_files.ATTACKS`) and
the studies. Look-ups accept the canonical name (the public function's name), the short name
of the command line and tables, and any alias::

    from jaxaudio.attacks import registry

    registry.names()                  # canonical names, in table order
    registry.get("mscw").function     # attacks.multiscale_carlini_wagner
    registry.get("psy").defaults      # {"sample_rate": 16000, "eps": 0.0005, ...}
    registry.validate("pgd", eps=1e-3)  # defaults filled in, numbers checked

=========================  ==========  =============  ==================================
canonical name             short       aliases        factory (:mod:`~jaxaudio.attacks.specs`)
=========================  ==========  =============  ==================================
fgsm                       fgsm                       fgsm
fgsm_sweep                 fgsm_sweep                 fgsm (vmapped over eps)
pgd                        pgd         pgd_linf       pgd
pgd_l2                     pgd_l2                     pgd (``norm="l2"``)
carlini_wagner             cw                         carlini_wagner
multiscale_carlini_wagner  mscw        multiscale_cw  multiscale_carlini_wagner
psychoacoustic             psy                        psychoacoustic (stage 2)
multilabel                 multilabel                 pgd or carlini_wagner
=========================  ==========  =============  ==================================

An entry's ``defaults`` are read from its public function's signature (the hyperparameters:
keyword-only arguments other than ``key``, ``target``, ``options`` and the inputs), so the
function stays the one place where a default is written.
"""

from __future__ import annotations

import inspect
from typing import Callable, Mapping, NamedTuple, Optional, Union

from jaxaudio.attacks import driver, gradient, multilabel, psychoacoustic, specs, validation
from jaxaudio.attacks.containers import AttackConfig
from jaxaudio.attacks.pieces import make_decision

__all__ = ["Entry", "ENTRIES", "names", "aliases", "get", "validate", "functions",
           "cli_names", "make_attack"]

#: Keyword-only arguments of a public attack that are not hyperparameters.
_NOT_HYPER = frozenset({"key", "target", "options", "goal", "tag", "target_tags", "attack",
                        "start", "start_iterations", "epsilons"})


class Entry(NamedTuple):
    """One attack of the table.

    Attributes:
      name: canonical name (the public function's name in :mod:`jaxaudio.attacks`).
      short: the name of the command line and the studies' tables.
      aliases: further names that resolve to this entry.
      function: the public attack ``fn(logits_fn, x, labels, *, key, target, <hyper>,
        options=None, **loop_options)``.
      factory: the :mod:`jaxaudio.attacks.specs` factory the compiled core runs (``None``
        where the function picks one, as :func:`jaxaudio.attacks.multilabel` does).
      static: the factory's static options the function fixes (e.g. ``norm="l2"``).
      positive: hyperparameters that must be finite and > 0.
      cli: offered by ``jaxaudio attack --audio --attack`` (single-label classifier, one
        adversarial per file).
    """

    name: str
    short: str
    aliases: tuple
    function: Callable
    factory: Optional[Callable]
    static: Mapping = {}
    positive: tuple = ()
    cli: bool = False

    @property
    def defaults(self) -> dict:
        """The hyperparameters' defaults, read from :attr:`function`'s signature."""
        params = inspect.signature(self.function).parameters.values()
        return {p.name: p.default for p in params
                if p.kind is p.KEYWORD_ONLY and p.name not in _NOT_HYPER
                and p.default is not p.empty}


_LR = ("learning_rate",)

#: The table (order: the order of :func:`names`).
ENTRIES = (
    Entry("fgsm", "fgsm", (), gradient.fgsm, specs.fgsm, positive=("eps",), cli=True),
    Entry("fgsm_sweep", "fgsm_sweep", (), gradient.fgsm_sweep, specs.fgsm),
    Entry("pgd", "pgd", ("pgd_linf",), gradient.pgd, specs.pgd, positive=("eps",) + _LR,
          cli=True),
    Entry("pgd_l2", "pgd_l2", (), gradient.pgd_l2, specs.pgd, static={"norm": "l2"},
          positive=("eps",) + _LR),
    Entry("carlini_wagner", "cw", (), gradient.carlini_wagner, specs.carlini_wagner,
          positive=("clip_eps", "alpha") + _LR, cli=True),
    Entry("multiscale_carlini_wagner", "mscw", ("multiscale_cw",),
          gradient.multiscale_carlini_wagner, specs.multiscale_carlini_wagner,
          positive=("clip_eps", "alpha") + _LR, cli=True),
    Entry("psychoacoustic", "psy", (), psychoacoustic.psychoacoustic, specs.psychoacoustic,
          positive=("eps", "stage1_learning_rate", "alpha", "alpha_min", "alpha_max") + _LR,
          cli=True),
    Entry("multilabel", "multilabel", (), multilabel.multilabel, None,
          positive=("eps", "clip_eps", "alpha") + _LR),
)

_BY_ANY_NAME = {n: e for e in ENTRIES for n in {e.name, e.short, *e.aliases}}
if sum(len({e.name, e.short, *e.aliases}) for e in ENTRIES) != len(_BY_ANY_NAME):
    raise RuntimeError("attack registry: a name or alias is used twice")


def names() -> tuple:
    """Canonical names of every registered attack, in table order."""
    return tuple(e.name for e in ENTRIES)


def aliases() -> dict:
    """``{any accepted name: canonical name}`` (short names and aliases included)."""
    return {n: e.name for n, e in _BY_ANY_NAME.items()}


def cli_names() -> tuple:
    """The short names ``jaxaudio attack --audio --attack`` offers."""
    return tuple(e.short for e in ENTRIES if e.cli)


def functions() -> dict:
    """``{canonical name: public function}``."""
    return {e.name: e.function for e in ENTRIES}


def get(name: str) -> Entry:
    """The :class:`Entry` of ``name`` (canonical, short or alias; ``"..._random"`` is not a
    name: strip it first), or ``ValueError`` listing the choices."""
    entry = _BY_ANY_NAME.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ValueError(f"unknown attack {name!r}; choose one of {', '.join(names())} "
                         f"(or {', '.join(sorted(set(_BY_ANY_NAME) - set(names())))})")
    return entry


def validate(name: str, **hyper) -> dict:
    """The hyperparameters of attack ``name``: ``hyper`` over its defaults, the positive ones
    checked; ``ValueError`` for a name that is not one of its hyperparameters."""
    entry = get(name)
    defaults = entry.defaults
    unknown = sorted(set(hyper) - set(defaults))
    if unknown:
        raise ValueError(f"{entry.name}: unknown hyperparameter{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(unknown)}; it takes {', '.join(defaults)} (loop options "
                         f"go in options= or as the other keywords)")
    out = {**defaults, **hyper}
    for key in entry.positive:
        if key in out:
            out[key] = validation.check_positive(key, out[key])
    return out


def make_attack(method: Union[str, Callable], logits_fn, *, slots: Optional[int] = None,
                loop: Optional[str] = None, **kwargs):
    """The cached, jitted batched core of an attack, without input validation.

    ``method``: a registered name with a factory (``"fgsm"``, ``"pgd"``, ``"pgd_l2"``,
    ``"cw"``/``"carlini_wagner"``, ``"mscw"``, ``"psy"``, ...; see :func:`get`) or a factory.
    ``kwargs``: :class:`~jaxaudio.attacks.containers.AttackConfig` settings by name
    (``targeted``, ``decision``, ``threshold``, ``output_index`` build the config's
    :class:`~jaxaudio.attacks.containers.Decision`; ``early_stop``, ``clip_min``,
    ``clip_max``, ``quantize_16bit``, ``snr_margin``) and the factory's *static* options (e.g.
    ``random_start``, ``norm``). Returns ``fn(x, labels, targets, keys, hyper, max_iterations)
    -> AttackResult`` with ``hyper`` a dict of the factory's numeric hyperparameters
    (:func:`jaxaudio.attacks.driver.as_hyper`), see
    :func:`jaxaudio.attacks.driver.compile_attack`. For benchmarks and inner loops that already
    hold validated device arrays; everyone else should call the public attacks.

    With ``slots=B`` the batch runs as a refilled queue through ``B`` slots and ``fn`` returns
    ``(AttackResult, slot_steps)`` (example-steps computed). ``loop``: ``"device"``, ``"host"``
    or ``None`` (see :func:`jaxaudio.attacks.driver.default_loop`).
    """
    if isinstance(method, str):
        entry = get(method)
        if entry.factory is None:
            raise ValueError(f"{entry.name} has no single factory; call attacks.{entry.name}")
        factory, static = entry.factory, dict(entry.static)
    else:
        factory, static = method, {}
    decision_keys = ("decision", "targeted", "threshold", "output_index")
    wanted = {k: kwargs.pop(k) for k in decision_keys if k in kwargs}
    config_keys = ("early_stop", "clip_min", "clip_max", "quantize_16bit", "snr_margin")
    config = AttackConfig(decision=make_decision(**wanted),
                          **{k: kwargs.pop(k) for k in config_keys if k in kwargs})
    static.update(kwargs)
    return driver.compile_attack(logits_fn, config, factory, tuple(sorted(static.items())),
                                 slots=validation.check_slots(slots), loop=loop)
