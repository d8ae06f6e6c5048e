"""The stage runner every study uses: keyed, atomic, resumable stages.

A study is a chain of stages. A stage is a name, a pure compute function and the settings it
depends on; its outputs (numpy arrays and JSON values, plus any files the function writes into
its folder) land atomically under ``<root>/<name>-<key>/``, where ``key`` hashes

- the stage's name and its own settings,
- the keys of the stages it reads (``inputs``), and
- any further identities it depends on (``depends``: a model fingerprint, a data root).

A rerun therefore recomputes exactly the stages whose key changed and everything downstream
of them: changing LIME's ``num_samples`` redoes the explanations but not the adversaries;
changing an attack's learning rate redoes that attack but does not retrain the classifier.

Example::

    runner = Runner(out / "stages", progress=True)
    data = runner.stage("excerpts", make_excerpts, settings={"num": 16, "seed": 0},
                        depends={"model": clf.fingerprint()})
    adv = runner.stage("attack", attack, settings={"eps": 5e-4}, inputs={"excerpts": data},
                       context={"clf": clf})
    adv["adversarial"]        # np.ndarray, loaded from <root>/attack-<key>/arrays.npz

The compute function is called as ``compute(stage_dir, **inputs, **context, **settings)``:
``inputs`` are :class:`StageResult` objects (index them like dicts), ``context`` values are
passed through unhashed (their identity must be covered by ``depends``), ``stage_dir`` is the
temporary folder to write extra files into (it becomes the stage's folder on success). It
returns a mapping of output names to numpy arrays (saved in ``arrays.npz``) or JSON values
(saved in ``values.json``).

Every call is recorded in ``<root>/log.jsonl`` (name, key, computed or reused, seconds), so a
run can tell which stages it recomputed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import sys
import time
from typing import Any, Callable, Mapping, Optional

import numpy as np

__all__ = ["Runner", "StageResult", "stage_key", "atomic_write_text", "write_json", "to_json"]

#: Bumped when the on-disk layout of a stage changes (old stages are then recomputed).
LAYOUT_VERSION = 1

_ARRAYS = "arrays.npz"
_VALUES = "values.json"
_DONE = "stage.json"


def _canonical(value: Any) -> Any:
    """JSON-able, order-independent form of settings (tuples -> lists, numpy -> Python)."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _canonical(dataclasses.asdict(value))
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"__array__": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(),
                "shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"stage settings must be JSON-like (numbers, strings, lists, dicts, "
                     f"arrays), got {type(value).__name__}: {value!r}")


def stage_key(name: str, settings: Mapping[str, Any], input_keys: Mapping[str, str],
              depends: Mapping[str, Any]) -> str:
    """16 hex digits identifying a stage's outputs (see the module docstring)."""
    blob = json.dumps({"layout": LAYOUT_VERSION, "name": name, "settings": _canonical(settings),
                       "inputs": dict(sorted(input_keys.items())),
                       "depends": _canonical(depends)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def atomic_write_text(path: os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def to_json(value: Any) -> Any:
    """The one JSON policy of every file jaxaudio writes: NumPy scalars and arrays become
    Python numbers and lists, tuples become lists, keys become strings, and non-finite floats
    (NaN, ±inf) become ``null``."""
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def write_json(path: os.PathLike, value: Any, *, indent: int = 2) -> pathlib.Path:
    """Write ``value`` as JSON under :func:`to_json`'s policy, atomically; returns the path."""
    atomic_write_text(path, json.dumps(to_json(value), indent=indent, allow_nan=False))
    return pathlib.Path(path)


@dataclasses.dataclass(frozen=True)
class StageResult:
    """A finished stage: its name, key, folder and outputs (``result["name"]``).

    Attributes:
      name: the stage's name.
      key: the hash of its settings, inputs and dependencies.
      path: its folder (holds ``arrays.npz``, ``values.json`` and any files it wrote).
      computed: True if this run computed it, False if it was reused from disk.
      seconds: compute time (of the run that computed it).
    """

    name: str
    key: str
    path: pathlib.Path
    computed: bool
    seconds: float
    outputs: Mapping[str, Any] = dataclasses.field(repr=False, default_factory=dict)

    def __getitem__(self, item: str) -> Any:
        return self.outputs[item]

    def __contains__(self, item: str) -> bool:
        return item in self.outputs

    def keys(self):
        return self.outputs.keys()

    def get(self, item: str, default: Any = None) -> Any:
        return self.outputs.get(item, default)


def _load(path: pathlib.Path) -> dict:
    outputs: dict[str, Any] = {}
    if (path / _VALUES).is_file():
        outputs.update(json.loads((path / _VALUES).read_text()))
    if (path / _ARRAYS).is_file():
        with np.load(path / _ARRAYS, allow_pickle=False) as f:
            outputs.update({k: f[k] for k in f.files})
    return outputs


def _save(path: pathlib.Path, outputs: Mapping[str, Any]) -> None:
    arrays = {k: v for k, v in outputs.items() if isinstance(v, np.ndarray)}
    values = {k: to_json(v) for k, v in outputs.items() if not isinstance(v, np.ndarray)}
    if arrays:
        np.savez_compressed(path / _ARRAYS, **arrays)
    if values:
        (path / _VALUES).write_text(json.dumps(values, indent=1, allow_nan=False))


class Runner:
    """Runs stages under ``root``, reusing every stage whose key is already on disk.

    Args:
      root: folder of the stages (created).
      progress: print one line per stage on stderr when it starts and when it is computed or
        reused, with its seconds (a stage's own tqdm bars are the study's to pass in ``context``).
      depends: identities every stage of this runner depends on (e.g. the data root).
    """

    def __init__(self, root: os.PathLike, *, progress: bool = True,
                 depends: Optional[Mapping[str, Any]] = None):
        self.root = pathlib.Path(root)
        self.progress = bool(progress)
        self.depends = dict(depends or {})
        self.history: list[dict] = []

    def stage(self, name: str, compute: Callable[..., Mapping[str, Any]], *,
              settings: Optional[Mapping[str, Any]] = None,
              inputs: Optional[Mapping[str, StageResult]] = None,
              context: Optional[Mapping[str, Any]] = None,
              depends: Optional[Mapping[str, Any]] = None,
              label: Optional[str] = None) -> StageResult:
        """Compute stage ``name`` or reuse it from disk; returns its :class:`StageResult`.

        ``label`` is what the progress line shows (default: ``name``).
        """
        settings = dict(settings or {})
        inputs = dict(inputs or {})
        context = dict(context or {})
        for k, v in inputs.items():
            if not isinstance(v, StageResult):
                raise ValueError(f"input {k!r} of stage {name!r} must be a StageResult, "
                                 f"got {type(v).__name__}")
        key = stage_key(name, settings, {k: v.key for k, v in inputs.items()},
                        {**self.depends, **(depends or {})})
        path = self.root / f"{name}-{key}"
        label = label or name
        if (path / _DONE).is_file():
            done = json.loads((path / _DONE).read_text())
            result = StageResult(name, key, path, False, float(done["seconds"]), _load(path))
            self._record(result, label)
            return result
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}-{key}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.progress:
            print(f"[stage] {label} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            outputs = compute(tmp, **inputs, **context, **settings)
            if not isinstance(outputs, Mapping):
                raise TypeError(f"stage {name!r} must return a mapping, got {type(outputs)}")
            _save(tmp, outputs)
            seconds = time.perf_counter() - t0
            (tmp / _DONE).write_text(json.dumps({"name": name, "key": key, "seconds": seconds,
                                                 "settings": _canonical(settings),
                                                 "inputs": {k: v.key for k, v in inputs.items()}},
                                                indent=1))
            shutil.rmtree(path, ignore_errors=True)  # a half-written folder of a killed run
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        result = StageResult(name, key, path, True, seconds, _load(path))
        self._record(result, label)
        return result

    def _record(self, result: StageResult, label: str) -> None:
        entry = {"stage": label, "name": result.name, "key": result.key,
                 "computed": result.computed, "seconds": round(result.seconds, 3)}
        self.history.append(entry)
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "log.jsonl", "a") as f:
            f.write(json.dumps({**entry, "time": time.time()}) + "\n")
        if self.progress:
            what = (f"computed in {result.seconds:.1f} s" if result.computed
                    else f"reused (computed earlier in {result.seconds:.1f} s)")
            print(f"[stage] {label}: {what}", file=sys.stderr, flush=True)

    def summary(self) -> dict:
        """Which stages this runner computed and reused, in order (for ``results.json``)."""
        return {"computed": [h["stage"] for h in self.history if h["computed"]],
                "reused": [h["stage"] for h in self.history if not h["computed"]],
                "compute_seconds": round(sum(h["seconds"] for h in self.history
                                             if h["computed"]), 3)}
