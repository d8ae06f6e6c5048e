"""Install extras: the optional packages (lime, cleanlab, visqol) load on first use only, and a
missing one is one line naming the ``pip install``, also from the command line (exit 2)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from jaxaudio import cli
from jaxaudio.runtime import extras
from jaxaudio.runtime.extras import MissingExtra, require

#: The importable module of each extra.
OPTIONAL = {"audit": "lime", "labels": "cleanlab", "perceptual": "visqol"}


def _hide(monkeypatch, top: str) -> None:
    """Make ``import top`` (and its already loaded submodules) fail as if not installed."""
    for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, top, None)


def test_require_returns_the_module_when_installed():
    assert require("numpy", "audit", feature="x") is np


@pytest.mark.parametrize("extra,module", sorted(OPTIONAL.items()))
def test_require_names_the_extra_and_the_pip_line(monkeypatch, extra, module):
    _hide(monkeypatch, module)
    with pytest.raises(MissingExtra) as info:
        require(module, extra, feature="jaxaudio thing")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"jaxaudio thing needs the '{extra}' extra (")
    assert message.endswith(f": pip install 'jaxaudio[{extra}]'")
    assert isinstance(info.value, ImportError) and info.value.extra == extra


def test_require_message_for_lime(monkeypatch):
    _hide(monkeypatch, "lime")
    with pytest.raises(MissingExtra, match=r"^jaxaudio audit needs the 'audit' extra \(lime\): "
                                           r"pip install 'jaxaudio\[audit\]'$"):
        require("lime.lime_base", "audit", feature="jaxaudio audit")


def test_require_passes_other_import_errors_through(monkeypatch, tmp_path):
    # An installed package failing on a dependency of its own is a real error, not a missing
    # extra: it propagates unchanged.
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("import not_a_module_anywhere_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError) as info:
        require("brokenpkg", "audit", feature="x")
    assert not isinstance(info.value, MissingExtra)
    assert info.value.name == "not_a_module_anywhere_xyz"
    with pytest.raises(ValueError, match="unknown extra"):
        require("numpy", "nope", feature="x")


def test_check_names_every_missing_extra_at_once(monkeypatch):
    extras.check(("audit", "labels", "perceptual"), feature="x")  # all installed here
    _hide(monkeypatch, "lime")
    _hide(monkeypatch, "visqol")
    with pytest.raises(MissingExtra) as info:
        extras.check(("perceptual", "labels", "audit"), feature="jaxaudio demo")
    assert str(info.value) == ("jaxaudio demo needs the 'perceptual', 'audit' extras "
                               "(visqol-python, lime): pip install 'jaxaudio[perceptual,audit]'")


def test_library_calls_raise_missing_extra(monkeypatch):
    from jaxaudio.dsp import perceptual
    from jaxaudio.labels import issues

    _hide(monkeypatch, "cleanlab")
    probs = np.full((4, 2), 0.5)
    with pytest.raises(MissingExtra, match=r"'labels' extra \(cleanlab\)"):
        issues.find_issues(np.array([0, 1, 0, 1]), probs)
    with pytest.raises(MissingExtra, match=r"'labels' extra \(cleanlab\)"):
        issues.find_multilabel_issues(np.eye(2)[[0, 1, 0, 1]], probs)
    _hide(monkeypatch, "visqol")
    with pytest.raises(MissingExtra, match=r"'perceptual' extra \(visqol-python\)"):
        perceptual.visqol_api.__wrapped__()  # past the cache of an earlier call


@pytest.mark.parametrize("argv,extra,package", [
    (["audit", "--preset", "smoke"], "audit", "lime"),
    (["noise", "--preset", "smoke"], "labels", "cleanlab"),
    (["attack", "--preset", "smoke"], "perceptual", "visqol-python"),
])
def test_cli_stops_before_any_work_with_one_line(monkeypatch, tmp_path, capsys,
                                                argv, extra, package):
    _hide(monkeypatch, OPTIONAL[extra])
    out = tmp_path / "run"
    assert cli.main([*argv, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"jaxaudio: error: jaxaudio {argv[0]} needs the '{extra}' extra "
                            f"({package}): pip install 'jaxaudio[{extra}]'\n")
    assert not out.exists()  # checked up front: nothing trained, nothing written


def test_cli_demo_names_all_missing_extras(monkeypatch, tmp_path, capsys):
    for module in OPTIONAL.values():
        _hide(monkeypatch, module)
    assert cli.main(["demo", "--preset", "smoke", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith(": pip install 'jaxaudio[all]'\n")
    assert all(f"'{e}'" in err for e in OPTIONAL)


@pytest.mark.parametrize("argv,needed", [
    (["noise", "--out", "o", "--no-label-issues"], ()),
    (["attack", "--out", "o", "--audio", "x.wav"], ()),
    (["explain", "--model", "m", "--audio", "a.wav", "--out", "o"], ("audit",)),
    (["explain", "--model", "m", "--audio", "a.wav", "--out", "o", "--method", "occlusion"], ()),
    (["demo", "--only", "recommend"], ()),
    (["demo", "--only", "noise", "audit"], ("labels", "audit")),
    (["recommend", "--out", "o"], ()),
    (["robustness", "--out", "o"], ()),
    (["train", "--dataset", "synth-voice", "--out", "o"], ()),
])
def test_cli_needs_extras_only_where_used(argv, needed):
    args = cli.build_parser().parse_args(argv)
    assert sorted(cli._extras_needed(args)) == sorted(needed)


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                          text=True, timeout=300)


def test_package_imports_without_any_extra():
    hide = "".join(f"sys.modules[{m!r}] = None; " for m in OPTIONAL.values())
    proc = _python(
        f"import sys; {hide}"
        "import jaxaudio.attacks, jaxaudio.explain, jaxaudio.labels, jaxaudio.dsp.perceptual, "
        "jaxaudio.cli\n"
        "jaxaudio.cli.build_parser()  # imports every study module\n"
        "try:\n"
        "    jaxaudio.cli.main(['--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n")
    assert proc.returncode == 0, proc.stderr
    assert "usage: jaxaudio" in proc.stdout


def test_building_the_cli_loads_no_optional_package():
    proc = _python("import sys, jaxaudio.cli; jaxaudio.cli.build_parser(); "
                   f"print(sorted(m for m in {sorted(OPTIONAL.values())!r} if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
