"""Shared pieces of the benchmarks: records, statistics, tables, the machine.

A figure is a record ``{"bench", "config", "impl", "metric", "value"}`` with a
numeric value; ``run.py --json PATH`` writes the list of every record.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple


@dataclass
class Record:
    """One figure."""

    bench: str
    config: str
    impl: str
    metric: str
    value: float

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


class Records:
    """The figures of a run, in the order they were taken."""

    def __init__(self) -> None:
        self.items: List[Record] = []

    def add(self, bench: str, config: str, impl: str, metric: str, value: float) -> None:
        v = float(value)
        self.items.append(Record(bench, config, impl, metric, v))

    def add_summary(self, bench: str, config: str, impl: str, metric: str, values: Sequence[float]) -> "Summary":
        """Adds ``metric_median``, ``metric_min``, ``metric_max`` and ``metric_n``."""
        s = Summary.of(values)
        self.add(bench, config, impl, metric + "_median", s.median)
        self.add(bench, config, impl, metric + "_min", s.lo)
        self.add(bench, config, impl, metric + "_max", s.hi)
        self.add(bench, config, impl, metric + "_n", s.n)
        return s

    def as_list(self) -> List[Dict[str, Any]]:
        """The records as plain dicts; a non-finite value becomes None (JSON null),
        so that the file is strict JSON."""
        out = []
        for r in self.items:
            d = r.as_dict()
            if not math.isfinite(d["value"]):
                d["value"] = None
            out.append(d)
        return out


@dataclass
class Summary:
    """Median and range of repeated measurements."""

    median: float
    lo: float
    hi: float
    n: int

    @staticmethod
    def of(values: Sequence[float]) -> "Summary":
        v = sorted(float(x) for x in values)
        if not v:
            return Summary(math.nan, math.nan, math.nan, 0)
        return Summary(median(v), v[0], v[-1], len(v))


def median(values: Iterable[float]) -> float:
    v = sorted(values)
    if not v:
        return math.nan
    k = len(v) // 2
    return v[k] if len(v) % 2 else 0.5 * (v[k - 1] + v[k])


def time_calls(fn: Callable[[], Any], n: int, sync: Optional[Callable[[], None]] = None) -> float:
    """Seconds per call of ``fn`` over ``n`` back-to-back calls (``sync`` after the last)."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    if sync is not None:
        sync()
    return (time.perf_counter() - t0) / n


def calibrate(fn: Callable[[], Any], target_s: float, sync: Optional[Callable[[], None]] = None,
              max_n: int = 1 << 20) -> int:
    """Number of calls of ``fn`` that take about ``target_s`` seconds (at least 1)."""
    n = 1
    while True:
        dt = time_calls(fn, n, sync) * n
        if dt >= target_s / 4 or n >= max_n:
            break
        n *= 4
    per = dt / n
    return max(1, min(max_n, int(target_s / per) if per > 0 else max_n))


# ---------------------------------------------------------------- the machine


def load_average() -> Tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (math.nan, math.nan, math.nan)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _proc_cpu(parents: Optional[Dict[int, int]] = None) -> Dict[int, Tuple[str, float]]:
    """pid -> (command name, CPU seconds so far) of every process, from /proc;
    fills ``parents`` (pid -> parent pid) when given."""
    tick = os.sysconf("SC_CLK_TCK")
    out: Dict[int, Tuple[str, float]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.find("(") + 1:st.rfind(")")]
        fields = st[st.rfind(")") + 2:].split()
        out[int(d)] = (name, (int(fields[11]) + int(fields[12])) / tick)  # utime + stime
        if parents is not None:
            parents[int(d)] = int(fields[1])
    return out


def busy_processes(window_s: float = 1.0, threshold: float = 0.2) -> List[str]:
    """Other processes that used more than ``threshold`` of a CPU over the last
    ``window_s`` seconds (sampled from /proc), for the 'taken under load'
    warning; empty where /proc is missing."""
    if not os.path.isdir("/proc/self"):
        return []
    a = _proc_cpu()
    time.sleep(window_s)
    b = _proc_cpu()
    me = os.getpid()
    busy = []
    for pid, (name, t) in b.items():
        if pid == me or pid not in a:
            continue
        share = (t - a[pid][1]) / window_s
        if share > threshold:
            busy.append(f"{name}({100 * share:.0f}%)")
    return busy


class LoadMonitor:
    """Samples, every ``period_s`` in a background thread, how much CPU the
    processes outside this one's tree use: the honest 'was the machine quiet'
    figure of a run (the load average counts the benchmark itself)."""

    def __init__(self, period_s: float = 5.0) -> None:
        import threading

        self.period = period_s
        self.samples: List[float] = []
        self.times: List[float] = []  # end time of each sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _others(self) -> Dict[int, float]:
        parents: Dict[int, int] = {}
        cpu = _proc_cpu(parents)
        me = os.getpid()
        mine = {me}
        changed = True
        while changed:  # the tree under this process (children, grandchildren)
            changed = False
            for pid, pp in parents.items():
                if pp in mine and pid not in mine:
                    mine.add(pid)
                    changed = True
        return {pid: t for pid, (_, t) in cpu.items() if pid not in mine}

    def _loop(self) -> None:
        prev, t_prev = self._others(), time.time()
        while not self._stop.wait(self.period):
            cur, t = self._others(), time.time()
            used = sum(v - prev[p] for p, v in cur.items() if p in prev and v >= prev[p])
            self.samples.append(used / max(t - t_prev, 1e-9))
            self.times.append(t)
            prev, t_prev = cur, t

    def window(self, t0: float, t1: float) -> float:
        """Mean CPUs used by other processes over the samples that ended in
        [t0, t1 + period] (nan if none)."""
        v = [x for x, t in zip(list(self.samples), list(self.times)) if t0 <= t <= t1 + self.period]
        return sum(v) / len(v) if v else math.nan

    def start(self) -> "LoadMonitor":
        if os.path.isdir("/proc/self"):
            self._thread.start()
        return self

    def stop(self) -> Tuple[float, float]:
        """Stops; returns (mean, max) CPUs used by other processes over the samples."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if not self.samples:
            return (math.nan, math.nan)
        return (sum(self.samples) / len(self.samples), max(self.samples))


def machine_info() -> Dict[str, Any]:
    import torch

    info: Dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "loadavg": load_average(),
    }
    try:
        import goreweight

        info["goreweight"] = getattr(goreweight, "__version__", "?")
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        info["goreweight"] = f"unavailable ({type(e).__name__}: {e})"
    return info


# ---------------------------------------------------------------- tables


def fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_range(s: Summary, f: Callable[[float], str]) -> str:
    if s.n <= 1:
        return f(s.median)
    return f"{f(s.median)} [{f(s.lo)}..{f(s.hi)}]"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-markdown table, columns padded for the terminal."""
    cols = [list(map(str, c)) for c in zip(headers, *rows)] if rows else [[h] for h in headers]
    widths = [max(len(x) for x in c) for c in cols]
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def say(*a: Any) -> None:
    print(*a, flush=True)


def warn(msg: str) -> None:
    print(f"NOTE: {msg}", file=sys.stdout, flush=True)
