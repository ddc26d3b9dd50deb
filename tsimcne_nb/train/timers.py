"""Per-phase wall-clock timers of the training loop (data, augmentation, step)."""

from __future__ import annotations

import time

import torch

#: on CUDA, phase timings synchronise on every n-th step only (sync costs throughput)
_TIMING_SAMPLE_EVERY = 20


# --------------------------------------------------------------------------- timing
class _PhaseTimer:
    """Wall time per phase of a training step.

    On CUDA the phases are measured (with synchronisation) on every n-th step only and
    scaled to the measured total, because synchronising every step slows training.
    """

    PHASES = ("data", "augment", "forward", "backward", "step")

    def __init__(self, device: torch.device):
        self._sync = torch.cuda.synchronize if device.type == "cuda" else None
        self._every = _TIMING_SAMPLE_EVERY if self._sync else 1
        self.sums = dict.fromkeys(self.PHASES, 0.0)
        self.sampled_time = 0.0
        self.total = 0.0
        self.steps = 0
        self._on = False
        self._t = 0.0

    def start(self) -> None:
        self._on = self.steps % self._every == 0
        self.steps += 1
        if self._on and self._sync:
            self._sync()
        self._t = time.perf_counter()

    def mark(self, phase: str) -> None:
        if not self._on:
            return
        if self._sync:
            self._sync()
        now = time.perf_counter()
        self.sums[phase] += now - self._t
        self.sampled_time += now - self._t
        self._t = now

    def summary(self) -> dict[str, float]:
        scale = self.total / self.sampled_time if self.sampled_time > 0 else 0.0
        out = {k: round(v * scale, 4) for k, v in self.sums.items()}
        out["train_steps_total"] = round(self.total, 4)
        out["steps"] = self.steps
        return out
