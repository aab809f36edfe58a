"""Time and latency conversions shared by the reference simulator and the stimulus encoders.

They are the Python twins of ``ms_to_ticks`` and ``latency_ms`` in ``rust/core/src/network.rs``
and evaluate the same floating-point expressions, so both backends round identically.
"""

from __future__ import annotations

import math

__all__ = ["MAX_TICKS", "latency_ms", "ms_to_ticks"]

#: Longest run, latency or refractory period in ticks (the core stores ticks as ``u32``).
MAX_TICKS = (2**32 - 1) // 2


def ms_to_ticks(ms: float, dt_ms: float) -> int:
    """Whole ticks in ``ms``: ``floor(ms / dt_ms + 0.5)``, at least 1 (round half up)."""
    return int(max(math.floor(ms / dt_ms + 0.5), 1.0))


def latency_ms(length_um: float, velocity_m_s: float) -> float:
    """Conduction latency (ms) of a path of ``length_um`` µm at ``velocity_m_s`` m/s."""
    return length_um / (velocity_m_s * 1000.0)
