"""The three studies of docs/studies.md as importable modules.

Each study module (``instrument_attacks``, ``label_noise``, ``lime_veracity``) provides

``add_arguments(parser)``
    its command-line options (``--preset smoke|demo|paper``, ``--data``, ``--out``, ``--seed``,
    and ``--model`` where a trained classifier can be reused);
``run(*, out, preset="demo", seed=0, data=None, model=None, progress=True) -> dict``
    the whole study: writes ``results.json``, figures, audio and ``report.html`` under ``out``
    (finished stages are reused on a rerun) and returns the results;
``run_from_args(args) -> int``
    ``run`` from parsed arguments, printing where the report is.

``jaxaudio.cli`` registers them as ``jaxaudio attack|noise|audit`` and ``experiments/*.py`` are
thin wrappers around the same functions; ``jaxaudio demo`` runs each with ``--preset demo``.
"""
