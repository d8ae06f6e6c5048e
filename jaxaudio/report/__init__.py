"""Reports that read files: ``report.html`` of a finished study folder, drawn from its files.

A study writes ``results.json`` (numbers) and the arrays its figures are drawn from
(``arrays/*.npz``) and listening examples (``audio/*.wav``) under its ``--out`` folder;
:func:`write_report` reads only those files, draws the figures (``figures/*.png``) and writes
``report.html``. It imports no study code, so ``jaxaudio report OUT`` redraws any finished
folder in a new process, with the same result as the run that wrote it.

Which page module draws a folder is decided by ``results["study"]`` through the fixed table
:data:`STUDY_PAGES` (no registry filled at run time). A module there has one function,
``render(out_dir, results) -> str``, returning the page body above the folded raw numbers: the
headline table next to the published figures, warnings on degenerate numbers, figures with
captions, listening examples.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Mapping

from jaxaudio.report import page
from jaxaudio.report.page import render_results

__all__ = ["STUDY_PAGES", "write_report", "combine_reports", "render_results", "redraw"]

#: ``results["study"]`` -> page module under :mod:`jaxaudio.report`.
STUDY_PAGES = {
    "foundation": "foundation",
    "instrument_attacks": "attacks",
    "label_noise": "label_noise",
    "lime_veracity": "lime_veracity",
    "recommender": "recommender",
    "attack_robustness": "robustness",
}


def _page_module(study):
    name = STUDY_PAGES.get(study) if isinstance(study, str) else None
    if name is None:
        return None
    try:
        return importlib.import_module(f"jaxaudio.report.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"jaxaudio.report.{name}":
            raise
        return None


def write_report(out_dir: str | os.PathLike, *, title: str | None = None) -> Path:
    """Draw the figures of a finished study folder and write its ``report.html``.

    Parameters
    ----------
    out_dir : path-like
        A study's output folder; must contain ``results.json`` (a JSON object) and the
        arrays and audio files the study saved.
    title : str, optional
        Page title; defaults to ``results["title"]``, else ``results["study"]``, else the
        folder name.

    Returns
    -------
    Path
        The written ``report.html``.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ValueError(f"report folder not found: {out_dir}")
    results = page.read_results(out_dir / "results.json")
    if title is None:
        title = str(results.get("title") or results.get("study") or out_dir.resolve().name)
    module = _page_module(results.get("study"))
    if module is not None:
        body = module.render(out_dir, results) + page.raw_numbers(results)
    else:  # a folder of no known study: every number, figure and WAV found there
        body = (f"<section><h2>Results</h2>{render_results(results, level=3)}</section>"
                + page.figures_html(out_dir) + page.audio_html(out_dir))
    path = out_dir / "report.html"
    path.write_text(page.document(title, body), encoding="utf-8")
    return path


def combine_reports(out_dir: str | os.PathLike, children: Mapping[str, str | os.PathLike], *,
                    title: str = "jaxaudio reports") -> Path:
    """Write ``out_dir/index.html`` linking several reports.

    Parameters
    ----------
    out_dir : path-like
        Where the index goes (created if missing).
    children : mapping name -> path
        Each path is a ``report.html`` or a folder containing one; a child's ``results.json``
        may hold a ``"headline"`` string, shown under its link.
    title : str

    Returns
    -------
    Path
        The written ``index.html``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not children:
        raise ValueError("children must name at least one report")
    items = []
    for name, child in children.items():
        child = Path(child)
        report = child / "report.html" if child.is_dir() else child
        if not report.is_file():
            raise ValueError(f"report for {name!r} not found: {report}")
        item = f'<li><a href="{page.link_href(report, out_dir)}">{page.esc(name)}</a>'
        results_path = report.parent / "results.json"
        if results_path.is_file():
            headline = page.read_results(results_path).get("headline")
            if isinstance(headline, str) and headline:
                item += f'<div class="note">{page.esc(headline)}</div>'
        items.append(item + "</li>")
    path = out_dir / "index.html"
    path.write_text(page.document(title, '<ul class="reports">' + "".join(items) + "</ul>"),
                    encoding="utf-8")
    return path


def redraw(out_dir: str | os.PathLike) -> list[Path]:
    """Redraw a study folder, or a demo folder (``index.json`` + its parts), from its files.

    Returns the pages written (for a demo: every part's ``report.html``, then ``index.html``).
    """
    import json

    out_dir = Path(out_dir)
    index = out_dir / "index.json"
    if index.is_file():
        try:
            spec = json.loads(index.read_text(encoding="utf-8"))
            parts = {str(k): out_dir / str(v) for k, v in spec["parts"].items()}
            title = str(spec.get("title", "jaxaudio reports"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"cannot read {index}: {err}") from err
        written = [write_report(p) for p in parts.values()]
        return written + [combine_reports(out_dir, parts, title=title)]
    if not (out_dir / "results.json").is_file():
        raise ValueError(f"{out_dir} holds neither results.json (a study folder) nor "
                         f"index.json (a demo folder)")
    return [write_report(out_dir)]
