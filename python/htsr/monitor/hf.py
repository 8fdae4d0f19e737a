"""A Hugging Face `transformers.TrainerCallback` that measures per-layer alpha during `Trainer.train()`."""
from __future__ import annotations

from typing import Optional

from transformers import TrainerCallback

from .alpha_monitor import AlphaMonitor

UNITS = ("step", "epoch")


class HTSRTrainerCallback(TrainerCallback):
    """Measures the model's per-layer alpha every `every` optimizer steps (unit='step', on
    `state.global_step`) or epochs (unit='epoch'), records the history, logs scalars and stops training
    (`control.should_training_stop`) when the mean alpha falls below `stop_below`.

    Logging: with `trainer` given (or `attach(trainer)`), the scalars go through `trainer.log`, so every
    reporting integration and `state.log_history` sees them; without it they are added to the `logs`
    of the Trainer's next `on_log` (which is requested at once with `control.should_log`) and reach the
    callbacks that run after this one.
    Only the world process zero writes the history file; every process measures (same weights, same
    result), so all of them stop together.

    Parameters: those of `htsr.monitor.AlphaMonitor` (every, history, stop_below, stop_metric,
    stop_reduce, patience, layers, min_evals, device, analyze_options), plus
    unit : 'step' (default) or 'epoch'.
    log_per_layer : also log htsr/alpha/{layer} for every layer.
    trainer : the Trainer, to log through `trainer.log`.
    """

    def __init__(self, *, every: int = 100, unit: str = "step", log_per_layer: bool = False, trainer=None,
                 **monitor_options):
        if unit not in UNITS:
            raise ValueError(f"unit must be 'step' or 'epoch', got {unit!r}")
        self.monitor = AlphaMonitor(None, every=every, **monitor_options)
        self.unit = unit
        self.log_per_layer = log_per_layer
        self.trainer = trainer
        self._pending: Optional[dict] = None

    @classmethod
    def attach(cls, trainer, **options) -> "HTSRTrainerCallback":
        """Creates the callback for `trainer`, adds it, and returns it."""
        callback = cls(trainer=trainer, **options)
        trainer.add_callback(callback)
        return callback

    @property
    def history(self):
        return self.monitor.history

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.unit == "step" and state.global_step % self.monitor.every == 0:
            self._measure(state, control, model)
        return control

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        epoch = int(round(state.epoch or 0))
        if self.unit == "epoch" and epoch % self.monitor.every == 0:
            self._measure(state, control, model)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._pending and logs is not None:
            logs.update(self._pending)
            if state.log_history and state.log_history[-1].get("step") == state.global_step:
                state.log_history[-1].update(self._pending)
            self._pending = None
        return control

    def _measure(self, state, control, model) -> None:
        self.monitor.measure(step=state.global_step, epoch=state.epoch, model=model,
                             write=state.is_world_process_zero)
        metrics = self.monitor.metrics(per_layer=self.log_per_layer)
        if self.trainer is not None:
            self.trainer.log(dict(metrics))
        else:
            self._pending = metrics
            control.should_log = True
        if self.monitor.should_stop:
            control.should_training_stop = True
