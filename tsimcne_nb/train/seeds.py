"""Seeding: every random number of a run flows from generators derived from
``(random_state, stage, epoch)``, and the global RNG states a checkpoint saves and restores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

# --------------------------------------------------------------------------- helpers
# Stream ids of _derive_seed: each source of randomness gets its own generator.
_S_INIT, _S_PERM, _S_AUG, _S_PREPARE, _S_SAMPLE = range(5)


def _derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed for one random stream, independent across ``keys``."""
    state = np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def _cpu_generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _device_generator(seed: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device) if device.type in ("cuda", "mps") else torch.Generator()
    g.manual_seed(seed)
    return g


def _rng_states() -> dict[str, Any]:
    """Global RNG states.  Training draws only from explicit generators re-seeded per epoch,
    so these are not needed for an exact resume; they are stored so that code running
    after a resumed fit (in the same process) sees the same global state as after an
    uninterrupted one."""
    import random

    states = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    import random

    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])  # noqa: NPY002
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
