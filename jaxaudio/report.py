"""Turn an experiment's output folder into a self-contained ``report.html``.

An experiment writes ``results.json`` (numbers), figures (PNG) and listening examples (WAV)
under its ``--out`` folder; :func:`write_report` renders all of it into one HTML page with
inline CSS (images and audio are referenced by relative path, so the folder can be moved or
zipped as a whole). Studies can put a custom section above the generic tables with
:func:`register_section`; :func:`combine_reports` writes an index page over several reports.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import quote

__all__ = [
    "register_section",
    "unregister_section",
    "render_results",
    "write_report",
    "combine_reports",
]

SectionRenderer = Callable[[dict, Path], str]

_SECTIONS: dict[str, SectionRenderer] = {}

#: Lists of numbers longer than this are shown as head ... tail plus a summary.
_MAX_LIST_ITEMS = 8
#: Lists of lists of numbers up to this size are shown as a matrix table.
_MAX_MATRIX_SIDE = 40

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 70em; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; margin-top: 1.6em; }
section { margin-left: .6em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: .5em 1em .8em 0; vertical-align: top; }
figure img { max-width: 32em; max-height: 28em; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; max-width: 32em; }
.audio { margin: .3em 0; display: flex; align-items: center; gap: 1em; }
.audio .label { min-width: 18em; }
.path { color: #888; font-size: .8em; }
.custom { margin-bottom: 1.5em; }
"""


# ----------------------------------------------------------------------------- registry


def register_section(study_name: str, render: SectionRenderer) -> None:
    """Register a custom report section for one study.

    Parameters
    ----------
    study_name : str
        Matched against ``results["study"]``.
    render : callable ``(results: dict, out_dir: Path) -> str``
        Returns an HTML fragment inserted verbatim above the generic tables; it must escape
        any text it includes (``html.escape``). Registering a name again replaces the renderer.
    """
    if not isinstance(study_name, str) or not study_name:
        raise ValueError(f"study_name must be a non-empty string, got {study_name!r}")
    if not callable(render):
        raise ValueError(f"render must be callable (results, out_dir) -> str, got {render!r}")
    _SECTIONS[study_name] = render


def unregister_section(study_name: str) -> None:
    """Remove a renderer added by :func:`register_section` (no error if absent)."""
    _SECTIONS.pop(study_name, None)


# ----------------------------------------------------------------------------- formatting


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _fmt(v: Any) -> str:
    """Plain-text form of a scalar (not yet escaped)."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.4g}"
    return str(v)


def _is_number_list(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(_is_number(x) for x in v)


def _is_string_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_matrix(v: Any) -> bool:
    return (isinstance(v, list) and len(v) > 0 and all(_is_number_list(r) for r in v)
            and len({len(r) for r in v}) == 1)


def _is_records(v: Any) -> bool:
    """A list of flat dicts sharing their keys (one table row each)."""
    return (isinstance(v, list) and len(v) > 0
            and all(isinstance(r, dict) and r and all(_is_scalar(x) for x in r.values())
                    for r in v)
            and len({tuple(r) for r in v}) == 1)


def _is_inline(v: Any) -> bool:
    """Values that fit in one table cell."""
    return _is_scalar(v) or _is_number_list(v) or _is_string_list(v) or v == {} or v == []


def _shorten_numbers(values: list) -> str:
    if len(values) <= _MAX_LIST_ITEMS:
        return ", ".join(_fmt(x) for x in values)
    finite = [float(x) for x in values if math.isfinite(x)]
    head = ", ".join(_fmt(x) for x in values[:3])
    tail = ", ".join(_fmt(x) for x in values[-2:])
    summary = f"n = {len(values)}"
    if finite:
        summary += (f"; mean {_fmt(sum(finite) / len(finite))}, min {_fmt(min(finite))}, "
                    f"max {_fmt(max(finite))}")
    return f"[{head}, …, {tail}] ({summary})"


def _inline_text(v: Any) -> str:
    """Plain text (not yet escaped) of a value that fits in one table cell."""
    if _is_number_list(v):
        return _shorten_numbers(v)
    if isinstance(v, list):
        items = [str(x) for x in v]
        text = ", ".join(items[:_MAX_LIST_ITEMS * 2])
        if len(items) > _MAX_LIST_ITEMS * 2:
            text += f", … ({len(items)} items)"
        return text
    if v == {}:
        return "{}"
    return _fmt(v)


def _cell(v: Any) -> str:
    """A ``<td>`` for an inline value."""
    cls = ' class="num"' if _is_number(v) or _is_number_list(v) else ""
    return f"<td{cls}>{_esc(_inline_text(v))}</td>"


def _key_value_table(items: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{_esc(k)}</th>{_cell(v)}</tr>" for k, v in items)
    return f'<table class="kv">{rows}</table>'


def _wide_table(mapping: Mapping[str, Mapping[str, Any]], corner: str = "") -> str:
    columns = list(next(iter(mapping.values())))
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    rows = "".join(
        f"<tr><th>{_esc(k)}</th>" + "".join(_cell(row[c]) for c in columns) + "</tr>"
        for k, row in mapping.items()
    )
    return f'<table class="wide"><tr><th>{_esc(corner)}</th>{head}</tr>{rows}</table>'


def _records_table(records: list[dict]) -> str:
    columns = list(records[0])
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    rows = "".join("<tr>" + "".join(_cell(r[c]) for c in columns) + "</tr>" for r in records)
    return f'<table class="records"><tr>{head}</tr>{rows}</table>'


def _matrix_table(matrix: list[list]) -> str:
    if len(matrix) > _MAX_MATRIX_SIDE or len(matrix[0]) > _MAX_MATRIX_SIDE:
        return f"<p>matrix of {len(matrix)} × {len(matrix[0])} values (too large to show)</p>"
    head = "".join(f"<th>{j}</th>" for j in range(len(matrix[0])))
    rows = "".join(
        f"<tr><th>{i}</th>" + "".join(_cell(x) for x in row) + "</tr>"
        for i, row in enumerate(matrix)
    )
    return f'<table class="matrix"><tr><th></th>{head}</tr>{rows}</table>'


def _is_uniform_dict_of_dicts(d: Mapping) -> bool:
    if not d or not all(isinstance(v, dict) and v for v in d.values()):
        return False
    keys = {tuple(v) for v in d.values()}
    return len(keys) == 1 and all(_is_inline(x) for v in d.values() for x in v.values())


def _render_value(value: Any, level: int) -> str:
    if isinstance(value, dict):
        return _render_mapping(value, level)
    if _is_matrix(value):
        return _matrix_table(value)
    if _is_records(value):
        return _records_table(value)
    if _is_inline(value):
        return f"<span>{_esc(_inline_text(value))}</span>"
    if isinstance(value, list):
        items = "".join(f"<li>{_render_value(v, level + 1)}</li>" for v in value)
        return f"<ol>{items}</ol>"
    return f"<p>{_esc(_fmt(value))}</p>"


def _render_mapping(mapping: Mapping[str, Any], level: int) -> str:
    if _is_uniform_dict_of_dicts(mapping):
        return _wide_table(mapping)
    inline = [(k, v) for k, v in mapping.items() if _is_inline(v)]
    nested = [(k, v) for k, v in mapping.items() if not _is_inline(v)]
    parts = [_key_value_table(inline)] if inline else []
    heading = f"h{min(level, 6)}"
    for key, value in nested:
        parts.append(
            f"<section><{heading}>{_esc(key)}</{heading}>{_render_value(value, level + 1)}"
            "</section>"
        )
    return "".join(parts)


def render_results(results: Mapping[str, Any], *, level: int = 2) -> str:
    """Generic HTML for a JSON-like results dict (all text escaped).

    Nested dicts become sections with headings (``<h{level}>`` downwards); dicts of scalars
    become two-column tables; dicts of dicts of scalars sharing their keys become one table
    with a row per outer key; lists of flat dicts become a table with a row per element; lists
    of equal-length number lists become a matrix table; long number lists are shortened to
    head, tail and a summary.
    """
    return _render_mapping(dict(results), level)


# ----------------------------------------------------------------------------- media


def _href(path: Path, base: Path) -> str:
    """Escaped, URL-quoted relative link from ``base`` to ``path``."""
    rel = Path(os.path.relpath(path, base)).as_posix()
    return _esc(quote(rel))


def _caption(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip() or path.name


def _files_by_folder(out_dir: Path, suffixes: tuple[str, ...]) -> dict[str, list[Path]]:
    files = sorted(
        (p for p in out_dir.rglob("*") if p.is_file() and p.suffix.lower() in suffixes),
        # Top-level files first, then folder by folder.
        key=lambda p: (p.parent != out_dir, p.parent.relative_to(out_dir).as_posix(), p.name),
    )
    groups: dict[str, list[Path]] = {}
    for p in files:
        groups.setdefault(p.parent.relative_to(out_dir).as_posix(), []).append(p)
    return groups


def _group_heading(folder: str) -> str:
    return "" if folder == "." else f"<h3>{_esc(folder)}/</h3>"


def _embedded_sources(html_text: str) -> set[str]:
    """The ``src`` attributes of the images and players a study's own section already shows."""
    return set(re.findall(r'\bsrc="([^"]+)"', html_text))


def _without(groups: dict, out_dir: Path, skip: set[str]) -> dict:
    kept = {folder: [p for p in files if _href(p, out_dir) not in skip]
            for folder, files in groups.items()}
    return {folder: files for folder, files in kept.items() if files}


def _figures_html(out_dir: Path, skip: set[str] = frozenset()) -> str:
    groups = _without(_files_by_folder(out_dir, (".png",)), out_dir, skip)
    if not groups:
        return ""
    parts = ["<section><h2>Figures</h2>"]
    for folder, files in groups.items():
        parts.append(_group_heading(folder))
        for p in files:
            cap = _esc(_caption(p))
            parts.append(
                f'<figure><img src="{_href(p, out_dir)}" alt="{cap}" loading="lazy">'
                f"<figcaption>{cap}</figcaption></figure>"
            )
    parts.append("</section>")
    return "".join(parts)


def _audio_html(out_dir: Path, skip: set[str] = frozenset()) -> str:
    groups = _without(_files_by_folder(out_dir, (".wav",)), out_dir, skip)
    if not groups:
        return ""
    parts = ["<section><h2>Listening examples</h2>"]
    for folder, files in groups.items():
        parts.append(_group_heading(folder))
        for p in files:
            rel = p.relative_to(out_dir).as_posix()
            parts.append(
                f'<div class="audio"><span class="label">{_esc(_caption(p))} '
                f'<span class="path">{_esc(rel)}</span></span>'
                f'<audio controls preload="none" src="{_href(p, out_dir)}"></audio></div>'
            )
    parts.append("</section>")
    return "".join(parts)


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><h1>{_esc(title)}</h1>\n{body}\n</body></html>\n"
    )


def _read_results(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"results file not found: {path}")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read results file {path}: {err}") from err
    if not isinstance(results, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(results).__name__}")
    return results


# ----------------------------------------------------------------------------- pages


def write_report(out_dir: str | os.PathLike, *, title: str | None = None) -> Path:
    """Render ``out_dir/results.json`` plus its figures and audio into ``out_dir/report.html``.

    Parameters
    ----------
    out_dir : path-like
        An experiment's output folder; must contain ``results.json`` (a JSON object).
    title : str, optional
        Page title; defaults to ``results["title"]``, else ``results["study"]``, else the
        folder name.

    Returns
    -------
    Path
        The written ``report.html``.

    Notes
    -----
    The page contains, in order: the registered section for ``results["study"]`` (if any, see
    :func:`register_section`), the generic tables of :func:`render_results`, every PNG under
    ``out_dir`` (recursively, grouped by folder, captions from file names) and every WAV as an
    ``<audio controls>`` player -- except those the section already embeds (same ``src``).
    Links are relative, so the folder stays self-contained.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ValueError(f"out_dir is not a folder: {out_dir}")
    results = _read_results(out_dir / "results.json")
    if title is None:
        title = str(results.get("title") or results.get("study") or out_dir.resolve().name)
    parts = []
    study = results.get("study")
    shown: set[str] = set()
    if isinstance(study, str) and study in _SECTIONS:
        section = _SECTIONS[study](results, out_dir)
        shown = _embedded_sources(section)
        parts.append(f'<div class="custom">{section}</div>')
    parts.append(f"<section><h2>Results</h2>{render_results(results, level=3)}</section>")
    # Figures and players the study's section already shows are not repeated.
    parts.append(_figures_html(out_dir, shown))
    parts.append(_audio_html(out_dir, shown))
    path = out_dir / "report.html"
    path.write_text(_page(title, "\n".join(p for p in parts if p)), encoding="utf-8")
    return path


def combine_reports(
    out_dir: str | os.PathLike,
    children: Mapping[str, str | os.PathLike],
    *,
    title: str = "jaxaudio reports",
) -> Path:
    """Write ``out_dir/index.html`` linking several reports.

    Parameters
    ----------
    out_dir : path-like
        Where the index goes (created if missing).
    children : mapping name -> path
        Each path is a ``report.html`` or a folder containing one. The headline scalars of the
        child's ``results.json`` (if present next to it) are shown under its link.
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
    parts = ["<ul class=\"reports\">"]
    for name, child in children.items():
        child = Path(child)
        report = child / "report.html" if child.is_dir() else child
        if not report.is_file():
            raise ValueError(f"report for {name!r} not found: {report}")
        item = f'<li><a href="{_href(report, out_dir)}">{_esc(name)}</a>'
        results_path = report.parent / "results.json"
        if results_path.is_file():
            results = _read_results(results_path)
            headline = [(k, v) for k, v in results.items() if _is_scalar(v)][:12]
            if headline:
                item += _key_value_table(headline)
        parts.append(item + "</li>")
    parts.append("</ul>")
    path = out_dir / "index.html"
    path.write_text(_page(title, "".join(parts)), encoding="utf-8")
    return path
