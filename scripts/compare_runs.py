"""Compare two finished study (or demo) folders: same seed, same science?

    python scripts/compare_runs.py RUN_A RUN_B [--json OUT]

Compares, for every ``results.json`` found under both folders (same relative path), the numeric
leaves (timings and paths aside: keys containing ``seconds``, ``time``, ``path``, ``stages``),
and, for every stage of ``stages/`` present in both (matched by its folder name,
``<name>-<key>``, so an unchanged key is part of the check), every array of ``arrays.npz`` and
every numeric leaf of ``values.json``. Prints the counts, the stages present in only one of the
folders, and the largest absolute difference; exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

import numpy as np

SKIP = ("seconds", "time", "path", "stages", "timing", "per_second", "speed", "_at", "files",
        "dir", "folder", "report")


def _skipped(key: str) -> bool:
    key = key.lower()
    return any(s in key for s in SKIP)


def _leaves(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            if not _skipped(str(k)):
                yield from _leaves(v, f"{prefix}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{prefix}[{i}]")
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        yield prefix, value
    elif isinstance(value, (int, float)):
        yield prefix, float(value)


def _same(a, b) -> tuple[bool, float]:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True, 0.0
        return a == b, abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.inf
    # the one JSON policy writes non-finite numbers as null
    if (a is None and isinstance(b, float) and not math.isfinite(b)) or (
            b is None and isinstance(a, float) and not math.isfinite(a)):
        return True, 0.0
    return a == b, 0.0 if a == b else math.inf


def compare_json(a: pathlib.Path, b: pathlib.Path, label: str, stats: dict) -> None:
    la = dict(_leaves(json.loads(a.read_text())))
    lb = dict(_leaves(json.loads(b.read_text())))
    for key in sorted(set(la) | set(lb)):
        if key not in la or key not in lb:
            stats["missing_leaves"].append(f"{label}{key}")
            continue
        same, diff = _same(la[key], lb[key])
        stats["leaves"] += 1
        if not same:
            stats["differing"].append(f"{label}{key}: {la[key]!r} vs {lb[key]!r}")
            stats["max_diff"] = max(stats["max_diff"], diff)


def compare_arrays(a: pathlib.Path, b: pathlib.Path, label: str, stats: dict) -> None:
    with np.load(a) as fa, np.load(b) as fb:
        for name in sorted(set(fa.files) | set(fb.files)):
            if _skipped(name):
                continue
            if name not in fa.files or name not in fb.files:
                stats["missing_leaves"].append(f"{label}:{name}")
                continue
            x, y = fa[name], fb[name]
            stats["arrays"] += 1
            if x.shape != y.shape or x.dtype != y.dtype:
                stats["differing"].append(f"{label}:{name}: {x.shape}/{x.dtype} vs "
                                          f"{y.shape}/{y.dtype}")
                stats["max_diff"] = math.inf
            elif not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"):
                stats["differing"].append(f"{label}:{name}")
                if x.dtype.kind in "fciu" and x.size:
                    d = np.abs(x.astype(np.float64) - y.astype(np.float64))
                    stats["max_diff"] = max(stats["max_diff"], float(np.nanmax(d)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    parser.add_argument("--json", default=None, help="write the comparison here")
    args = parser.parse_args(argv)
    ra, rb = pathlib.Path(args.run_a), pathlib.Path(args.run_b)
    stats = {"results_files": 0, "leaves": 0, "stages": 0, "arrays": 0, "differing": [],
             "missing_leaves": [], "only_in_a": [], "only_in_b": [], "max_diff": 0.0}
    for res in sorted(ra.rglob("results.json")):
        rel = res.relative_to(ra)
        if "stages" in rel.parts:
            continue
        if (rb / rel).is_file():
            stats["results_files"] += 1
            compare_json(res, rb / rel, f"{rel}", stats)
    for stages_a in sorted(ra.rglob("stages")):
        rel = stages_a.relative_to(ra)
        stages_b = rb / rel
        if not stages_a.is_dir() or not stages_b.is_dir():
            continue
        names_a = {p.name for p in stages_a.iterdir() if p.is_dir()}
        names_b = {p.name for p in stages_b.iterdir() if p.is_dir()}
        stats["only_in_a"] += [f"{rel}/{n}" for n in sorted(names_a - names_b)]
        stats["only_in_b"] += [f"{rel}/{n}" for n in sorted(names_b - names_a)]
        for name in sorted(names_a & names_b):
            stats["stages"] += 1
            for kind, fn in (("arrays.npz", compare_arrays), ("values.json", compare_json)):
                fa, fb = stages_a / name / kind, stages_b / name / kind
                if fa.is_file() and fb.is_file():
                    fn(fa, fb, f"{rel}/{name}/{kind}", stats)
    print(f"results.json files: {stats['results_files']}, numeric/text leaves: {stats['leaves']}")
    print(f"stages in both (same name and key): {stats['stages']}, arrays: {stats['arrays']}")
    print(f"stages only in A: {len(stats['only_in_a'])}, only in B: {len(stats['only_in_b'])}")
    for n in stats["only_in_a"][:20]:
        print(f"  only in A: {n}")
    for n in stats["only_in_b"][:20]:
        print(f"  only in B: {n}")
    print(f"missing leaves/arrays: {len(stats['missing_leaves'])}")
    for n in stats["missing_leaves"][:20]:
        print(f"  missing: {n}")
    print(f"differing: {len(stats['differing'])}; largest absolute difference: "
          f"{stats['max_diff']:.3g}")
    for n in stats["differing"][:30]:
        print(f"  differs: {n}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(stats, indent=1))
    bad = stats["differing"] or stats["missing_leaves"] or stats["only_in_a"] or stats["only_in_b"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
