"""The shared page code of every report: CSS, tables, warning boxes, figures with captions,
listening rows, folded raw numbers, and a matplotlib figure that needs no backend.

Every piece returns an HTML fragment with all text escaped; links are relative to the study
folder, so a folder can be moved or zipped as a whole. Per-study modules
(:mod:`jaxaudio.report.attacks` and friends) compose these pieces from files only.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

__all__ = [
    "render_results", "table", "warnings", "figure", "figures", "listening", "raw_numbers",
    "document", "new_figure", "save_figure", "read_results", "read_arrays", "esc", "fmt",
]

#: Lists of numbers longer than this are shown as head ... tail plus a summary.
_MAX_LIST_ITEMS = 8
#: Lists of lists of numbers up to this size are shown as a matrix table.
_MAX_MATRIX_SIDE = 40

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em auto;
       max-width: 76em; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; font-size: 1.6em; }
h2 { border-bottom: 1px solid #bbb; margin-top: 1.6em; font-size: 1.25em; }
section { margin-left: .2em; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .88em; }
th, td { border: 1px solid #ccc; padding: .2em .5em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.published td { color: #555; background: #fafafa; font-style: italic; }
.lead { font-size: 1em; max-width: 60em; }
.warn { border: 1px solid #d9a400; background: #fff7d6; padding: .5em 1em; margin: .8em 0;
        border-radius: 4px; }
.warn strong { color: #7a5200; }
.note { color: #555; font-size: .9em; max-width: 60em; }
.figs { display: flex; flex-wrap: wrap; gap: 1.2em; }
figure { margin: .4em 0 .8em; flex: 1 1 36em; max-width: 100%; }
figure.wide { flex-basis: 100%; }
figure img { width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: .88em; color: #333; margin-top: .3em; }
figcaption b { color: #000; }
.clip { border: 1px solid #ddd; border-radius: 4px; padding: .4em .8em; margin: .6em 0; }
.clip .facts { font-size: .9em; color: #333; margin-bottom: .3em; }
.players { display: flex; flex-wrap: wrap; gap: .4em 1.4em; }
.player { display: flex; flex-direction: column; font-size: .85em; }
.player audio { width: 17em; height: 2.2em; }
details { margin: 1em 0; }
details > summary { cursor: pointer; font-weight: bold; }
.path { color: #888; font-size: .8em; }
.audio { margin: .3em 0; display: flex; align-items: center; gap: 1em; }
ul.reports li { margin-bottom: 1em; }
"""


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


def link_href(path: Path, base: Path) -> str:
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


def _file_section(out_dir: Path, suffix: str, heading: str, item) -> str:
    """A section listing every ``suffix`` file under ``out_dir``, folder by folder, each as
    ``item(path)`` (the fallback page of a folder no study module knows)."""
    groups = _files_by_folder(out_dir, (suffix,))
    if not groups:
        return ""
    parts = [f"<section><h2>{heading}</h2>"]
    for folder, files in groups.items():
        parts.append(_group_heading(folder))
        parts.extend(item(p) for p in files)
    parts.append("</section>")
    return "".join(parts)


def figures_html(out_dir: Path) -> str:
    def item(p):
        cap = _esc(_caption(p))
        return (f'<figure><img src="{link_href(p, out_dir)}" alt="{cap}" loading="lazy">'
                f"<figcaption>{cap}</figcaption></figure>")

    return _file_section(out_dir, ".png", "Figures", item)


def audio_html(out_dir: Path) -> str:
    def item(p):
        rel = p.relative_to(out_dir).as_posix()
        return (f'<div class="audio"><span class="label">{_esc(_caption(p))} '
                f'<span class="path">{_esc(rel)}</span></span>'
                f'<audio controls preload="none" src="{link_href(p, out_dir)}"></audio></div>')

    return _file_section(out_dir, ".wav", "Listening examples", item)


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




# ----------------------------------------------------------------------------- page pieces


def esc(text: Any) -> str:
    """``text`` escaped for HTML (quotes included)."""
    return _esc(text)


def fmt(value: Any, digits: int = 3, *, std: Any = None) -> str:
    """A number with ``digits`` decimals (``–`` for None/NaN), optionally ``± std``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, str):
        return value
    text = f"{value:.{digits}f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {std:.{digits}f}"
    return text


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *,
          published: Iterable[Sequence[Any]] = (), caption: str | None = None) -> str:
    """A scrollable table; ``rows`` are measured values, ``published`` rows are shown greyed.

    Cells are plain text (escaped here); numbers are right-aligned.
    """
    def cells(row):
        return "".join(
            f'<td class="num">{_esc(_fmt(c))}</td>' if _is_number(c) else f"<td>{_esc(c)}</td>"
            for c in row)

    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join(f"<tr>{cells(r)}</tr>" for r in rows)
    body += "".join(f'<tr class="published">{cells(r)}</tr>' for r in published)
    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return f'<div class="scroll"><table>{cap}<tr>{head}</tr>{body}</table></div>'


def warnings(messages: Iterable[str]) -> str:
    """A warning box listing degenerate numbers (empty string if there are none)."""
    items = [m for m in messages if m]
    if not items:
        return ""
    lis = "".join(f"<li>{_esc(m)}</li>" for m in items)
    return f'<div class="warn"><strong>Read with care</strong><ul>{lis}</ul></div>'


def figure(out_dir: Path, path: Path, caption: str, *, title: str | None = None,
           wide: bool = False) -> str:
    """A figure, full size on click, with a caption that says what to read from it.

    ``caption`` is plain text; ``title`` (bold, first) names the figure. A missing file is
    shown as a note instead of a broken image.
    """
    path = Path(path)
    if not path.is_file():
        return f'<p class="note">figure missing: {_esc(path.name)}</p>'
    href = link_href(path, out_dir)
    head = f"<b>{_esc(title)}.</b> " if title else ""
    cls = ' class="wide"' if wide else ""
    return (f'<figure{cls}><a href="{href}"><img src="{href}" alt="{_esc(title or path.stem)}">'
            f"</a><figcaption>{head}{_esc(caption)}</figcaption></figure>")


def figures(parts: Iterable[str]) -> str:
    """Figures side by side where the page is wide enough."""
    return '<div class="figs">' + "".join(parts) + "</div>"


def listening(out_dir: Path, clips: Iterable[Mapping[str, Any]]) -> str:
    """Listening examples, one box per clip.

    Each clip is ``{"title": str, "facts": {name: value}, "players": [(label, wav_path)]}``
    with players in listening order (original -> adversarial -> perturbation).
    """
    boxes = []
    for clip in clips:
        facts = " · ".join(f"{_esc(k)}: <b>{_esc(_fmt(v) if _is_number(v) else v)}</b>"
                           for k, v in clip.get("facts", {}).items())
        players = "".join(
            f'<div class="player"><span>{_esc(label)}</span>'
            f'<audio controls preload="none" src="{link_href(Path(wav), out_dir)}"></audio></div>'
            for label, wav in clip["players"] if Path(wav).is_file())
        boxes.append(f'<div class="clip"><div class="facts"><b>{_esc(clip["title"])}</b>'
                     f"{' · ' + facts if facts else ''}</div>"
                     f'<div class="players">{players}</div></div>')
    return "".join(boxes)


def raw_numbers(results: Mapping[str, Any]) -> str:
    """All of ``results.json``, folded away (``<details>``)."""
    return ("<details><summary>All numbers (results.json)</summary>"
            f"{render_results(results, level=3)}</details>")


def document(title: str, body: str) -> str:
    """A whole HTML page with the shared CSS."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><h1>{_esc(title)}</h1>\n{body}\n</body></html>\n"
    )


def new_figure(width_in: float = 7.0, height_in: float = 4.0, **subplots):
    """``(fig, axes)`` of a matplotlib :class:`~matplotlib.figure.Figure` (no pyplot, so no
    backend is chosen or needed); ``subplots`` go to ``fig.subplots``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in))
    return fig, fig.subplots(**subplots)


def save_figure(fig, path: Path, *, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG (folder created), deterministically (no timestamp metadata)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi, metadata={"Software": None})
    return path


def read_results(path: Path) -> dict:
    """``results.json`` as a dict; ``ValueError`` naming the file if missing or invalid."""
    return _read_results(Path(path))


def read_arrays(path: Path) -> dict:
    """The arrays of an ``.npz`` a study saved for its figures; ``ValueError`` if missing."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"arrays file not found: {path} (was the study run to the end?)")
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
