"""How many threads the C kernels may use (they receive it on every call)."""
import os

MAX_THREADS = 256  # the kernels' limit (libgomp aborts the process on absurd thread counts)
_num_threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def get_num_threads() -> int:
    """Number of threads the kernels use (default: the CPUs this process may run on)."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Set the number of threads the kernels use; ``n`` must be an int in [1, 256].

    >>> import wageubn
    >>> old = wageubn.get_num_threads(); wageubn.set_num_threads(1); wageubn.get_num_threads()
    1
    >>> wageubn.set_num_threads(old)
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_THREADS:
        raise ValueError(f"set_num_threads: n must be an int in [1, {MAX_THREADS}], got {n!r}")
    _num_threads = n
