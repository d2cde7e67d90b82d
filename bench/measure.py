"""Process-tree measurement for the benchmarks: CPU seconds (user + system) of a process and every
descendant it had (Chromium's browser, renderer, GPU and utility processes included, exited ones too:
their last sample is kept), peak RSS of the tree, wall time. Sampled with psutil every ~0.2 s.

Also small statistics helpers shared by bench/sweep.py."""

from __future__ import annotations

import math
import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psutil


@dataclass
class TreeUsage:
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    samples: int = 0
    processes_seen: int = 0
    returncode: int | None = None
    load_avg: float | None = None  # mean 1-minute load average over the run (the machine is shared)
    cpu_by_kind: dict[str, float] = field(default_factory=dict)  # python, driver, browser, renderer, gpu...


@dataclass
class TreeSampler:
    """Samples the tree rooted at `pid` until stopped. CPU of a process is its own user + system time, the
    last (highest) value seen for it, kept after it exits: a process loses at most its last ~0.2 s, and
    one that lives less than one interval is not seen at all (Chromium's helpers live for the run).
    `children_user/system` are not added: they would count again the children we sampled alive."""

    pid: int
    interval: float = 0.2
    _cpu: dict[tuple[int, float], float] = field(default_factory=dict)  # (pid, create_time) -> cpu s
    _kind: dict[tuple[int, float], str] = field(default_factory=dict)
    _peak_rss: int = 0
    _samples: int = 0
    _load: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        rss = 0
        for p in procs:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    key = (p.pid, p.create_time())
                    own = t.user + t.system
                    rss += p.memory_info().rss
                    if key not in self._kind:
                        self._kind[key] = process_kind(p.name(), p.cmdline())
            except psutil.Error:
                continue
            if own > self._cpu.get(key, 0.0):
                self._cpu[key] = own
        self._peak_rss = max(self._peak_rss, rss)
        self._samples += 1
        self._load.append(os.getloadavg()[0])

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def start(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._loop, name="tree-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def cpu_s(self) -> float:
        return sum(self._cpu.values())

    def usage(self) -> TreeUsage:
        by_kind: dict[str, float] = {}
        for key, cpu in self._cpu.items():
            kind = self._kind.get(key, "other")
            by_kind[kind] = by_kind.get(kind, 0.0) + cpu
        return TreeUsage(cpu_s=self.cpu_s, peak_rss_mb=self._peak_rss / 2**20, samples=self._samples,
                         processes_seen=len(self._cpu), cpu_by_kind=by_kind,
                         load_avg=sum(self._load) / len(self._load) if self._load else None)


def process_kind(name: str, cmdline: Sequence[str]) -> str:
    """What a process of the tree is: our Python, Playwright's driver (node), or which Chromium process
    (browser: network, interception, screenshots; renderer: DOM, layout, page scripts, locators)."""
    if "python" in name:
        return "python"
    if name == "node" or any(a.endswith("cli.js") for a in cmdline[:3]):
        return "playwright-driver"
    for a in cmdline:
        if a.startswith("--type="):
            kind = a.removeprefix("--type=")
            if kind == "utility":
                sub = next((x.removeprefix("--utility-sub-type=") for x in cmdline
                            if x.startswith("--utility-sub-type=")), "")
                return f"utility:{sub.rsplit('.', 1)[-1]}" if sub else "utility"
            return kind
    if "chrom" in name:
        return "browser"
    return name or "other"


def run_measured(cmd: Sequence[str], *, cwd: str | None = None, env: dict | None = None,
                 timeout_s: float | None = None, stdout=None, stderr=None) -> TreeUsage:
    """Run `cmd` to completion while sampling its process tree."""
    t0 = time.monotonic()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=stdout, stderr=stderr)
    sampler = TreeSampler(proc.pid).start()
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    finally:
        sampler.stop()
    u = sampler.usage()
    u.wall_s = time.monotonic() - t0
    u.returncode = rc
    return u


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    xs = sorted(values)
    if not xs:
        return None
    k = max(1, math.ceil(q / 100 * len(xs)))
    return xs[k - 1]
