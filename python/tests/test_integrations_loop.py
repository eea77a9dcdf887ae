"""examples/pytorch_loop.py on one process and on two torchrun ranks (gloo, CPU).

Needs no transformers. The ranks must agree on everything global (the statistics), their slices
must put together the weights the oracle gives for the gathered losses, and the 2-rank run (batch
4 per rank) must follow the 1-process run (batch 8) that sees the same data.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from goreweight import schedules, torch_reference

from _integ_util import free_port, run_bounded

ROOT = Path(__file__).resolve().parents[2]
LOOP = ROOT / "examples" / "pytorch_loop.py"
STEPS = 4
COMMON = ["--steps", str(STEPS), "--seq-len", "32", "--schedule", "linear", "--r-start", "3",
          "--r-end", "0.5", "--log-every", "1"]


def read_dump(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_importing_goreweight_needs_no_transformers():
    code = ("import sys, goreweight, goreweight.integrations; "
            "assert 'transformers' not in sys.modules, 'goreweight imported transformers'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_pytorch_loop_one_and_two_ranks_agree(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    out1 = run_bounded([sys.executable, str(LOOP), *COMMON, "--batch-size", "8", "--dump", str(one)], 180)
    assert "done: 4 steps, 1 process(es)" in out1
    out2 = run_bounded([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
                        str(LOOP), *COMMON, "--batch-size", "4", "--dump", str(two)], 240)
    assert "done: 4 steps, 2 process(es)" in out2

    r0, r1 = read_dump(two / "rank0.jsonl"), read_dump(two / "rank1.jsonl")
    single = read_dump(one / "rank0.jsonl")
    sched = schedules.linear(3.0, 0.5, STEPS)
    assert len(r0) == len(r1) == len(single) == STEPS
    for step, (a, b, s) in enumerate(zip(r0, r1, single)):
        assert a["step"] == b["step"] == step
        # every rank computed the same global weights from the same gathered losses
        assert a["stats"] == b["stats"]
        assert a["stats"]["m"] == 8 and a["stats"]["r"] == pytest.approx(sched(step))
        losses = torch.tensor(a["losses"] + b["losses"])
        w = torch.tensor(a["weights"] + b["weights"])  # global-rank order
        want = torch_reference.weights(losses, strategy="linupper", r=sched(step))
        torch.testing.assert_close(w, want, rtol=1e-4, atol=1e-6)
        assert float(w.sum()) == pytest.approx(1.0, abs=1e-5)
        assert a["stats"]["loss_weighted"] == pytest.approx(float((w * losses).sum()), rel=1e-5)
        # the same data and model as one process with the whole batch
        tol = 1e-5 if step == 0 else 1e-3
        torch.testing.assert_close(losses, torch.tensor(s["losses"]), rtol=tol, atol=tol)
        torch.testing.assert_close(w, torch.tensor(s["weights"]), rtol=10 * tol, atol=tol)
    assert not math.isclose(r0[-1]["stats"]["max_wm"], 1.0)  # really reweighted
