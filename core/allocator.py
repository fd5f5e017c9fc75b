"""Keep freed tensor memory in the process instead of handing it back to the kernel.

Training on the CPU allocates and frees, every step, activations of tens of megabytes:
eff's first block alone holds 16 x 128 x 128 x 32 float32 = 33.5 MB per tensor at
batch 16. glibc's malloc serves blocks that large with ``mmap`` and unmaps them on
``free`` (its mmap threshold tops out at 32 MB), and trims the heap's free top back
to the kernel; TensorFlow's generator dataset even lowers the trim threshold to 128
KB. So each step faults all its activation memory in again, page by page, each page
zeroed by the kernel. Measured on the project's 2-core CPU (benchmarks/allocator.md):
two demo epochs of eff spent 162 s of their 210 s in the kernel; with the freed memory
kept, 9 s of 110 s, the same weights and losses to the last digit.

:func:`retain_freed_memory` sets glibc's own knobs (``mallopt``) so large blocks come
from the heap and the heap keeps a generous free top: memory, once touched, stays
with the process (the resident size stays at its peak, which it reaches anyway).
It changes nothing when the C library is not glibc, and defers to a user who set
glibc's malloc environment variables or tunables, or asked for the system's
behaviour with ``EFFNET_STEERING_MALLOC=system`` (``kept``, or unset: this module's).
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

logger = logging.getLogger(__name__)

#: The environment variable that chooses: "kept" (or unset) or "system" (glibc's defaults).
ENV = "EFFNET_STEERING_MALLOC"
CHOICES = ("kept", "system")
# mallopt parameters, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4
#: Free memory the heap's top keeps when it shrinks: room for many of a CPU step's
#: activations (eff's first block: 33.5 MB each at batch 16).
TOP_PAD_BYTES = 1 << 30
#: Free memory at the heap's top before glibc trims it (the largest int mallopt takes).
TRIM_THRESHOLD_BYTES = (1 << 31) - 1
#: glibc's own environment for the same knobs: a user who set one keeps their choice.
GLIBC_ENV = (
    "MALLOC_TOP_PAD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_MAX_",
    "MALLOC_MMAP_THRESHOLD_",
)


def _user_choice() -> str | None:
    """What the user set that this must not override, or None."""
    value = os.environ.get(ENV, "").strip().lower() or "kept"
    if value not in CHOICES:
        raise ValueError(f"{ENV} must be one of {', '.join(CHOICES)} (or unset); got {value!r}")
    if value == "system":
        return f"{ENV}=system"
    for name in GLIBC_ENV:
        if name in os.environ:
            return f"{name}={os.environ[name]}"
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return f"GLIBC_TUNABLES={os.environ['GLIBC_TUNABLES']}"
    return None


def retain_freed_memory() -> bool:
    """Make glibc keep freed memory for the next allocation; True when it was set.

    Call it once, early, in a process that trains or runs models on the CPU. Safe to
    call again; a no-op (False) off glibc or when the user chose the allocator's
    behaviour themselves (see the module docstring); ValueError for an
    ``EFFNET_STEERING_MALLOC`` that is neither ``kept`` nor ``system``.
    """
    chosen = _user_choice()
    if chosen:
        logger.debug("allocator left as it is: %s", chosen)
        return False
    if platform.libc_ver()[0] != "glibc":
        logger.debug("allocator left as it is: C library is not glibc")
        return False
    libc = ctypes.CDLL(None)  # the process's own symbols: glibc's mallopt, no library search
    settings = (
        (M_MMAP_MAX, 0),  # large blocks from the heap, not from mmap (unmapped on free)
        (M_TOP_PAD, TOP_PAD_BYTES),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
    )
    for param, value in settings:
        if libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) != 1:
            logger.warning("mallopt(%d, %d) refused: allocator left partly as it was", param, value)
            return False
    logger.debug("allocator keeps freed memory (mmap off, top pad %d bytes)", TOP_PAD_BYTES)
    return True
