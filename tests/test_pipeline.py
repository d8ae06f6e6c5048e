"""The stage runner: keys, reuse, atomicity, invalidation downstream."""

import json

import numpy as np
import pytest

from jaxaudio.runtime.pipeline import Runner, stage_key


def _counter():
    calls = []

    def make(stage_dir, *, n, seed):
        calls.append(("make", n, seed))
        (stage_dir / "note.txt").write_text("extra file")
        return {"x": np.arange(n, dtype=np.float32) + seed, "total": float(n)}

    def double(stage_dir, *, data, factor):
        calls.append(("double", factor))
        return {"y": data["x"] * factor}

    return calls, make, double


def test_reuse_and_downstream_invalidation(tmp_path):
    calls, make, double = _counter()
    r = Runner(tmp_path, progress=False)
    a = r.stage("make", make, settings={"n": 4, "seed": 1})
    b = r.stage("double", double, settings={"factor": 2.0}, inputs={"data": a})
    assert a.computed and b.computed
    np.testing.assert_array_equal(b["y"], (np.arange(4) + 1) * 2.0)
    assert a["total"] == 4.0 and (a.path / "note.txt").read_text() == "extra file"

    r2 = Runner(tmp_path, progress=False)
    a2 = r2.stage("make", make, settings={"seed": 1, "n": 4})  # order of settings is irrelevant
    b2 = r2.stage("double", double, settings={"factor": 3.0}, inputs={"data": a2})
    assert not a2.computed and b2.computed
    assert calls == [("make", 4, 1), ("double", 2.0), ("double", 3.0)]
    assert r2.summary()["computed"] == ["double"] and r2.summary()["reused"] == ["make"]

    r3 = Runner(tmp_path, progress=False)
    a3 = r3.stage("make", make, settings={"n": 5, "seed": 1})  # upstream change
    b3 = r3.stage("double", double, settings={"factor": 3.0}, inputs={"data": a3})
    assert a3.computed and b3.computed and b3.key != b2.key
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [e["computed"] for e in log] == [True, True, False, True, True, True]


def test_depends_changes_key(tmp_path):
    calls, make, _ = _counter()
    Runner(tmp_path, progress=False, depends={"model": "aaa"}).stage(
        "make", make, settings={"n": 2, "seed": 0})
    again = Runner(tmp_path, progress=False, depends={"model": "bbb"}).stage(
        "make", make, settings={"n": 2, "seed": 0})
    assert again.computed and len(calls) == 2


def test_failed_stage_leaves_nothing(tmp_path):
    def boom(stage_dir, *, n):
        (stage_dir / "partial.npy").write_bytes(b"half")
        raise RuntimeError("killed")

    r = Runner(tmp_path, progress=False)
    with pytest.raises(RuntimeError):
        r.stage("boom", boom, settings={"n": 1})
    assert [p.name for p in tmp_path.iterdir() if p.name != "log.jsonl"] == []

    def ok(stage_dir, *, n):
        return {"n": n}

    assert r.stage("boom", ok, settings={"n": 1}).computed


def test_context_is_not_hashed_and_bad_settings_raise(tmp_path):
    def use(stage_dir, *, model, k):
        return {"v": model * k}

    r = Runner(tmp_path, progress=False)
    assert r.stage("use", use, settings={"k": 2}, context={"model": 3})["v"] == 6
    # same settings, other context object: reused (identity belongs in ``depends``)
    assert r.stage("use", use, settings={"k": 2}, context={"model": 4})["v"] == 6
    with pytest.raises(ValueError, match="JSON-like"):
        r.stage("use", use, settings={"k": object()}, context={"model": 1})
    with pytest.raises(ValueError, match="StageResult"):
        r.stage("use", use, settings={"k": 1}, inputs={"model": 3})


def test_key_is_stable_and_sensitive():
    k = stage_key("a", {"x": (1, 2), "y": np.float32(0.5)}, {"in": "k1"}, {"m": "f"})
    assert k == stage_key("a", {"y": 0.5, "x": [1, 2]}, {"in": "k1"}, {"m": "f"})
    assert k != stage_key("a", {"x": (1, 3), "y": 0.5}, {"in": "k1"}, {"m": "f"})
    assert k != stage_key("a", {"x": (1, 2), "y": 0.5}, {"in": "k2"}, {"m": "f"})
    assert k != stage_key("b", {"x": (1, 2), "y": 0.5}, {"in": "k1"}, {"m": "f"})
