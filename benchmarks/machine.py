"""The machine a benchmark ran on: CPU model and usable cores (for the reports)."""
import os
import platform


def cpu_and_cores():
    """(CPU model name from /proc/cpuinfo, or platform's guess; cores this process may use)."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cpu, cores
