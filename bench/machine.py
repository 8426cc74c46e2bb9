"""What a benchmark ran on, recorded beside its figures.

Model-bound times depend on the CPU far more than on the code: bf16 on a CPU without
native bf16 ran ~80x slower than float32 (docs/llm.md), so a table without the CPU, the
compute dtype and the thread count cannot be compared with another.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name, or the platform's processor string where /proc is absent."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe_machine(backend_name: str | None = None) -> dict[str, Any]:
    """CPUs, CPU model and platform; for the embedded backend also its compute dtype,
    whether the CPU does bf16 natively and the model's torch threads (nothing is loaded)."""
    info: dict[str, Any] = {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu": cpu_model(),
        "platform": platform.platform(),
    }
    if backend_name in (None, "embedded"):
        from workers.llm.embedded import compute_dtype, native_bf16, torch_threads  # torch

        info["dtype"] = str(compute_dtype()).removeprefix("torch.")
        info["native_bf16"] = native_bf16()
        info["torch_threads"] = torch_threads()
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One line for a results table."""
    parts = [f"{info['cpus']} CPUs", info["cpu"], info["platform"]]
    if "dtype" in info:
        bf16 = "native bf16" if info["native_bf16"] else "no native bf16"
        parts.append(f"{info['dtype']} ({bf16}), torch threads: {info['torch_threads']}")
    return "Machine: " + ", ".join(parts) + "."


def machine_lines(results: dict[str, Any]) -> list[str]:
    """The machine line and a blank for a report, or nothing for results saved before
    the machine was recorded (``--report-only`` on old runs)."""
    return [machine_line(results["machine"]), ""] if "machine" in results else []
