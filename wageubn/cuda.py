"""``torch.cuda`` stand-in: there is no GPU here.

``is_available()`` is False and ``device_count()`` 0, so torch code that picks its device with
``"cuda" if torch.cuda.is_available() else "cpu"`` runs on the CPU; the seeding calls are
accepted and do nothing (there is no CUDA generator to seed).

>>> import wageubn as torch
>>> torch.cuda.is_available(), torch.cuda.device_count()
(False, 0)
"""

__all__ = ["is_available", "device_count", "manual_seed", "manual_seed_all", "synchronize"]


def is_available() -> bool:
    """False: no CUDA device exists for this package."""
    return False


def device_count() -> int:
    """0: no CUDA device exists for this package."""
    return 0


def manual_seed(seed: int) -> None:
    """Accepted and ignored (no CUDA generator); seed with :func:`wageubn.manual_seed`."""


def manual_seed_all(seed: int) -> None:
    """Accepted and ignored (no CUDA generator); seed with :func:`wageubn.manual_seed`."""


def synchronize(device=None) -> None:
    """Nothing to wait for: every computation has finished when its call returns."""
