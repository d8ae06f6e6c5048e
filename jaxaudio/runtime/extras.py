"""Optional dependencies ("extras"): import them on first use, or say in one line what to install.

The core install (``pip install jaxaudio``) trains, evaluates, attacks and reports. Three parts
need a package more:

==============  ====================  ====================================================
extra           packages              used by
==============  ====================  ====================================================
``audit``       ``lime``              LIME (``jaxaudio audit``, ``explain --method lime``)
``labels``      ``cleanlab``          finding the wrong labels (``jaxaudio noise``)
``perceptual``  ``visqol-python``     ViSQOL scores of adversarial audio (``attack``)
``all``         the three above       every study (``jaxaudio demo``)
``bench``       foolbox, torch        the PyTorch side-by-side benchmarks only
==============  ====================  ====================================================

:func:`require` imports such a package and returns it; when it is missing, it raises
:class:`MissingExtra` (an ``ImportError``) whose message is one line naming the extra and the
``pip install`` command. The command line prints that line and exits with status 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import types

__all__ = ["EXTRAS", "MissingExtra", "check", "require"]

#: Each extra: the importable modules it provides, and the distributions it installs.
EXTRAS: dict[str, dict[str, tuple[str, ...]]] = {
    "audit": {"modules": ("lime",), "packages": ("lime",)},
    "labels": {"modules": ("cleanlab",), "packages": ("cleanlab",)},
    "perceptual": {"modules": ("visqol",), "packages": ("visqol-python",)},
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message is the one line to show."""

    def __init__(self, message: str, *, extra: str, module: str):
        super().__init__(message, name=module)
        self.extra = extra


def _message(feature: str, extras: list[str]) -> str:
    names = ", ".join(f"'{e}'" for e in extras)
    packages = ", ".join(p for e in extras for p in EXTRAS[e]["packages"])
    plural = "s" if len(extras) > 1 else ""
    target = "all" if set(extras) == set(EXTRAS) else ",".join(extras)
    return (f"{feature} needs the {names} extra{plural} ({packages}): "
            f"pip install 'jaxaudio[{target}]'")


def require(module_name: str, extra: str, *, feature: str) -> types.ModuleType:
    """Import ``module_name`` (e.g. ``"lime.lime_base"``) and return it.

    Args:
      module_name: the dotted module to import.
      extra: the extra that installs it (a key of :data:`EXTRAS`).
      feature: what needs it, for the message (e.g. ``"jaxaudio audit"``).

    Raises:
      MissingExtra: the module (or its top-level package) cannot be imported; the message is
        ``"<feature> needs the '<extra>' extra (<packages>): pip install 'jaxaudio[<extra>]'"``.
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        top = module_name.partition(".")[0]
        # Only the optional package itself being absent is "missing"; an ImportError from
        # inside an installed package is a real bug and propagates unchanged.
        if err.name is None or err.name.partition(".")[0] != top:
            raise
        raise MissingExtra(_message(feature, [extra]), extra=extra, module=module_name) from err


def check(extras, *, feature: str) -> None:
    """Raise one :class:`MissingExtra` naming every one of ``extras`` that is not installed.

    Looks the modules up without importing them (cheap: a command checks before its work)."""
    absent = []
    for extra in dict.fromkeys(extras):
        if extra not in EXTRAS:
            raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
        for module in EXTRAS[extra]["modules"]:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                absent.append(extra)
                break
    if absent:
        raise MissingExtra(_message(feature, absent), extra=absent[0],
                           module=EXTRAS[absent[0]]["modules"][0])
