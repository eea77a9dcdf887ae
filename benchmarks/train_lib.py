"""Table 3's library side: the installed goreweight.train() (the shared
library Python loads with ctypes), one run, printed as one JSON line.

    python benchmarks/train_lib.py '{"steps": 12, ...}' WARMUP

tokens/s is the median of the per-step metrics records after WARMUP steps,
as for the goreweight-train binary; vmhwm_kib is this process's peak RSS,
which includes the Python interpreter and the torch that ``import goreweight``
loads.
"""

from __future__ import annotations

import json
import os
import statistics
import sys

import goreweight
from torch_gpt import vmhwm_kib


def main() -> int:
    cfg = json.loads(sys.argv[1])
    warmup = int(sys.argv[2])
    summ = goreweight.train(cfg)
    tps = []
    with open(os.path.join(cfg["out"], "metrics.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r.get("step", 0) > warmup and isinstance(r.get("tokens_per_s"), (int, float)):
                tps.append(float(r["tokens_per_s"]))
    print(json.dumps({
        "tokens_per_s": statistics.median(tps) if tps else float(summ["runs"][0]["tokens_per_s"]),
        "backend": summ.get("backend", "?"), "params": summ.get("params", 0), "vmhwm_kib": vmhwm_kib(),
        "library": goreweight.library_path(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
