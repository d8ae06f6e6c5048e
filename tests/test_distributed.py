"""Two CPU processes under jax.distributed give what one process gives (PGD and LIME)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from jaxaudio.cli import distributed as cli_distributed
from jaxaudio.runtime import distributed


def test_shares_cover_the_job_once():
    for total, count in [(5, 2), (4, 4), (7, 3), (2, 3)]:
        parts = [distributed.share(total, process_index=p, process_count=count)
                 for p in range(count)]
        covered = np.concatenate([np.arange(total)[s] for s in parts])
        np.testing.assert_array_equal(covered, np.arange(total))


def test_bad_process_id_names_the_problem():
    with pytest.raises(ValueError, match="process_id"):
        distributed.initialize("localhost:1", num_processes=2, process_id=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _run(tmp_path, *extra, name):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    cmd = [sys.executable, "-m", "jaxaudio.cli.distributed", "--out", str(tmp_path / name), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    port = _free_port()
    coord = ["--coordinator", f"localhost:{port}", "--processes", "2"]
    procs = [_run(tmp_path, *coord, "--process-id", str(i), name=f"p{i}.json")
             for i in range(2)]
    # The single-process run, here in the test process, while the two others run.
    assert cli_distributed.main(["--out", str(tmp_path / "single.json")]) == 0
    for p in procs:
        out, _ = p.communicate(timeout=900)
        assert p.returncode == 0, out[-2000:]
    one = json.loads((tmp_path / "single.json").read_text())
    assert one["process_count"] == 1
    for i in range(2):
        two = json.loads((tmp_path / f"p{i}.json").read_text())
        assert two["process_index"] == i and two["process_count"] == 2
        assert two["share"] == [[0, 3], [3, 5]][i]  # each process ran its own share
        np.testing.assert_array_equal(np.asarray(two["adversarial"]),
                                      np.asarray(one["adversarial"]))
        assert two["iterations"] == one["iterations"] and two["success"] == one["success"]
        np.testing.assert_allclose(np.asarray(two["lime_weights"]),
                                   np.asarray(one["lime_weights"]), rtol=0, atol=1e-8)
