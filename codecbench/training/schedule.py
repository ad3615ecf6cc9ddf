"""Training recipes as plain data: the baseline's schedule and the fine-tuning defaults.

Kept free of Keras so that the command line can show and validate them without starting it.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass
class TrainConfig:
    #: 21: the end of the third warm-restart cycle (3 + 6 + 12 epochs), so the model is saved at the lowest rate;
    #: 30 ended inside the fourth, at 69 % of its peak rate (:meth:`cycle_note`)
    epochs: int = 21
    batch_size: int = 32
    learning_rate: float = 0.1
    first_restart_epochs: float = 3.0
    period_multiplier: float = 2.0
    rate_multiplier: float = 1.0
    min_lr_fraction: float = 1e-4
    momentum: float = 0.9
    mixup_alpha: float = 0.4
    crop_frames: int | None = 400
    freq_mask_bins: int = 16
    time_mask_frames: int = 40
    seed: int = 0
    #: Keras dtype policy of the training step: "float32" or "mixed_bfloat16" (weights stay float32 either way)
    precision: str = "float32"
    #: devices to train on, data-parallel: "auto" (every local accelerator if more than one), a count, or names
    devices: str = "auto"

    def schedule(self, steps_per_epoch: int):
        """The learning-rate schedule (Keras ``CosineDecayRestarts``) for ``steps_per_epoch``."""
        from codecbench.core.backend import keras

        return keras.optimizers.schedules.CosineDecayRestarts(
            self.learning_rate, first_decay_steps=max(1, int(round(self.first_restart_epochs * steps_per_epoch))),
            t_mul=self.period_multiplier, m_mul=self.rate_multiplier, alpha=self.min_lr_fraction)


    def cycle_ends(self, up_to: int) -> list[int | float]:
        """The epochs where a warm-restart cycle of the schedule ends (the rate at its lowest), up to ``up_to``."""
        ends, length, at = [], float(self.first_restart_epochs), 0.0
        while at + length <= up_to + 1e-9 and length > 0:
            at += length
            ends.append(round(at, 6))
            length *= self.period_multiplier
            if self.period_multiplier <= 0:
                break
        return [int(e) if float(e).is_integer() else e for e in ends]

    def cycle_note(self) -> str | None:
        """Why ``epochs`` may not be what one wants: it ends inside a warm-restart cycle (the model is saved at a
        rate well above the cycle's lowest); None when it ends at a cycle's end."""
        ends = self.cycle_ends(max(self.epochs * 4, 10))
        if self.epochs in ends or not ends:
            return None
        done = [e for e in ends if e < self.epochs]
        start = done[-1] if done else 0
        length = self.first_restart_epochs * self.period_multiplier ** len(done)
        peak = self.rate_multiplier ** len(done)
        fraction = (self.epochs - start) / length
        rate = self.min_lr_fraction + (1 - self.min_lr_fraction) * 0.5 * (1 + math.cos(math.pi * fraction))
        nearest = [e for e in ends if e >= self.epochs][:1] + done[-1:]
        return (f"--epochs {self.epochs} ends inside a warm-restart cycle, at {100 * rate:.0f} % of that cycle's peak "
                f"rate ({peak * self.learning_rate:g}); cycles end at epoch {', '.join(map(str, sorted(nearest)))}")


#: Fine-tuning defaults: a model already trained wants a small rate and short warm restarts, not 0.1.
FINETUNE_DEFAULTS: dict[str, Any] = {"learning_rate": 0.01, "first_restart_epochs": 2.0, "period_multiplier": 2.0,
                     "rate_multiplier": 0.7, "mixup_alpha": 0.2, "epochs": 10}


#: Fine-tuning learning rate of one segment alone, by segment kind, when none is chosen (``--lr``). The channel
#: attention (the dense segment) ends in a sigmoid that is mostly saturated in a trained FCNN: its gradient relative
#: to its weights is ~100x smaller than any convolution's, so it gets ten times the rate (see the README,
#: "Segment 10", for what that does and does not change).
SEGMENT_LEARNING_RATES = {"conv": 0.01, "dense": 0.1}



def crops_for(config: TrainConfig, reference: int, frames: int) -> TrainConfig:
    """``config``, made for clips of ``reference`` feature frames, with its crop and time mask scaled to clips of
    ``frames`` frames.

    A preset's crop is made for its own data's clips (the demo's 64 of 79 frames of 2-s clips, the paper's 400 of 423
    frames of 10-s clips); on clips of another length the same fraction is kept, so ``--preset small`` on 10-s clips
    crops 343 frames rather than 64 (a sixth of each clip per example).
    """
    if frames == reference:
        return config

    def scaled(value):
        return max(1, min(frames, round(value * frames / reference))) if value else value

    return dataclasses.replace(config, crop_frames=scaled(config.crop_frames),
                               time_mask_frames=scaled(config.time_mask_frames))


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """One training run a plan prices: ``epochs`` over the training split under ``conditions`` of its conditions
    (None: all of them), training the whole model, or each of ``segments`` alone for ``epochs`` (Experiment B: one
    run per segment, each priced at its own rate, :func:`codecbench.run.plan.segment_rates`)."""

    name: str
    epochs: int
    conditions: int | None = None
    segments: tuple[int, ...] = ()
