"""The figure of ``jaxaudio explain``: an excerpt's spectrogram with its component grid beside
the explanation's component weights."""

from __future__ import annotations

import pathlib

import numpy as np

from jaxaudio.explain.segmentation import segment_bounds
from jaxaudio.report.page import new_figure, save_figure

__all__ = ["draw_explanation"]



def draw_explanation(exp, record: dict, path) -> pathlib.Path:
    """A PNG: the excerpt's spectrogram with the component grid, and the component weights
    as a heat map in the same layout (red: supports the explained class)."""

    fig, (ax_spec, ax_w) = new_figure(11.0, 3.8, ncols=2)
    spec = np.asarray(exp.spec)
    ax_spec.imshow(spec, origin="lower", aspect="auto", cmap="magma")
    for b in segment_bounds(spec.shape[1], exp.n_temporal)[1:-1]:
        ax_spec.axvline(b - 0.5, color="white", lw=0.8)
    for b in segment_bounds(spec.shape[0], exp.n_frequency)[1:-1]:
        ax_spec.axhline(b - 0.5, color="white", lw=0.8)
    ax_spec.set(xlabel="frame", ylabel="mel band",
                title=f"{pathlib.Path(record['file']).name} from {record['start_seconds']:.2f} s")
    grid = np.asarray(record["weights"]).reshape(exp.n_temporal, exp.n_frequency).T
    scale = float(np.max(np.abs(grid))) or 1.0
    im = ax_w.imshow(grid, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-scale, vmax=scale)
    for t in range(exp.n_temporal):
        for f in range(exp.n_frequency):
            ax_w.text(t, f, f"{grid[f, t]:+.2f}", ha="center", va="center", fontsize=8,
                      color="white" if abs(grid[f, t]) > 0.6 * scale else "black")
    ax_w.set(xticks=range(exp.n_temporal), yticks=range(exp.n_frequency),
             xlabel="time segment", ylabel="frequency band (0 = lowest)",
             title=f"{record['method']} weights for {record['label']} "
                   f"(p = {record['probability']:.2f})")
    fig.colorbar(im, ax=ax_w)
    return save_figure(fig, pathlib.Path(path))
