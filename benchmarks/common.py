"""Helpers the benchmarks share: machine description, CPU accounting, percentiles, a worker process.

CPU accounting matters here: the machines have 2 cores shared with other jobs, so every figure is
reported with how much of the machine our processes got and how much went to everything else.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    import onnxruntime as ort

    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "avx512_vnni": "avx512_vnni" in flags,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "kernel": platform.release(),
    }


def busy_processes(min_cpu: float = 20.0, exclude: Sequence[int] = ()) -> list[str]:
    """Other processes using a lot of CPU right now (``ps`` %CPU is a lifetime average)."""
    out = subprocess.run(
        ["ps", "-eo", "pid,pcpu,etimes,args", "--sort=-pcpu"], capture_output=True, text=True
    ).stdout.splitlines()[1:]
    rows = []
    for line in out:
        parts = line.split(None, 3)
        if len(parts) < 4 or int(parts[0]) in exclude or int(parts[0]) == os.getpid():
            continue
        if float(parts[1]) >= min_cpu:
            rows.append(f"{parts[0]} {parts[1]}% {parts[3][:120]}")
    return rows


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores together."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return (total - idle) / TICK, total / TICK


@dataclass
class CpuWindow:
    """CPU used by named processes and by the rest of the machine between ``start`` and ``stop``."""

    pids: dict[str, int]
    t0: float = 0.0
    start_cpu: dict[str, float] = field(default_factory=dict)
    start_machine: tuple[float, float] = (0.0, 0.0)
    result: dict[str, float] = field(default_factory=dict)

    def start(self) -> CpuWindow:
        self.t0 = time.perf_counter()
        self.start_cpu = {name: proc_cpu_s(pid) for name, pid in self.pids.items()}
        self.start_machine = machine_cpu_s()
        return self

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        busy0, _ = self.start_machine
        busy1, _ = machine_cpu_s()
        ours = 0.0
        out: dict[str, float] = {"wall_s": round(wall, 2)}
        for name, pid in self.pids.items():
            used = proc_cpu_s(pid) - self.start_cpu[name]
            ours += used
            out[f"{name}_cores"] = round(used / wall, 2) if wall > 0 else 0.0
        out["machine_busy_cores"] = round((busy1 - busy0) / wall, 2) if wall > 0 else 0.0
        out["others_cores"] = round(max(0.0, (busy1 - busy0 - ours) / wall), 2) if wall else 0.0
        self.result = out
        return out


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def scrape(port: int, timeout: float = 5.0) -> dict[str, float]:
    """Prometheus text from ``/metrics`` as {"name{labels}": value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


def metric_sum(metrics: dict[str, float], prefix: str) -> float:
    """Sum of every series whose name (before labels) is ``prefix``."""
    return sum(v for k, v in metrics.items() if k.split("{", 1)[0] == prefix)


@dataclass
class Worker:
    """A ``moodstream worker`` subprocess; ``python_code`` swaps the entry point (profiling)."""

    env: dict[str, str]
    log_path: Path
    python_code: str = "from stream.cli import main; main()"
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> float:
        """Start and wait for Faust's "Ready"; returns the seconds that took."""
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.log_path.open("ab")
        offset = self.log_path.stat().st_size  # "Ready" of an earlier start does not count
        began = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.python_code, "worker"],
            env=env,
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        while time.perf_counter() - began < timeout:
            text = self.log_path.read_bytes()[offset:].decode("utf-8", "replace")
            if "Ready" in text:
                return time.perf_counter() - began
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{text[-3000:]}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"worker not ready after {timeout}s; see {self.log_path}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode
