"""How many threads the C kernels may use (they receive it on every call)."""
import os

_num_threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def get_num_threads() -> int:
    """Number of threads the kernels use (default: the CPUs this process may run on)."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Set the number of threads the kernels use; ``n`` must be a positive int.

    >>> import wageubn
    >>> old = wageubn.get_num_threads(); wageubn.set_num_threads(1); wageubn.get_num_threads()
    1
    >>> wageubn.set_num_threads(old)
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    _num_threads = n
