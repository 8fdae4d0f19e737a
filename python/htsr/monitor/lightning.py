"""A PyTorch Lightning `Callback` that measures per-layer alpha during `Trainer.fit()`."""
from __future__ import annotations

try:  # the unified package first, then the standalone one
    from lightning.pytorch.callbacks import Callback
except ImportError:  # pragma: no cover - depends on what is installed
    from pytorch_lightning.callbacks import Callback

from .alpha_monitor import AlphaMonitor

UNITS = ("step", "epoch")


class HTSRLightningCallback(Callback):
    """Measures the LightningModule's per-layer alpha every `every` optimizer steps (unit='step', on
    `trainer.global_step`) or training epochs (unit='epoch', default), records the history, logs scalars
    with `pl_module.log` (to the trainer's logger) and sets `trainer.should_stop` when the mean alpha
    falls below `stop_below`.

    Only global rank zero writes the history file; every rank measures (same weights, same result), so
    all ranks stop together.

    Parameters: those of `htsr.monitor.AlphaMonitor` (every, history, stop_below, stop_metric,
    stop_reduce, patience, layers, min_evals, device, analyze_options), plus
    unit : 'epoch' (default) or 'step'.
    log_per_layer : also log htsr/alpha/{layer} for every layer.
    """

    def __init__(self, *, every: int = 1, unit: str = "epoch", log_per_layer: bool = False, **monitor_options):
        if unit not in UNITS:
            raise ValueError(f"unit must be 'step' or 'epoch', got {unit!r}")
        self.monitor = AlphaMonitor(None, every=every, **monitor_options)
        self.unit = unit
        self.log_per_layer = log_per_layer

    @property
    def history(self):
        return self.monitor.history

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.unit == "step" and trainer.global_step % self.monitor.every == 0 and trainer.global_step > 0:
            self._measure(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module):
        if self.unit == "epoch" and (trainer.current_epoch + 1) % self.monitor.every == 0:
            self._measure(trainer, pl_module)

    def _measure(self, trainer, pl_module) -> None:
        if self.monitor.last_step == trainer.global_step and self.unit == "step":
            return  # gradient accumulation: several batches end on the same optimizer step
        self.monitor.measure(step=trainer.global_step, epoch=trainer.current_epoch, model=pl_module,
                             write=trainer.is_global_zero)
        metrics = self.monitor.metrics(per_layer=self.log_per_layer)
        for name, value in metrics.items():
            if value == value:  # NaN (no layer fitted) is not logged
                pl_module.log(name, value, on_step=self.unit == "step", on_epoch=self.unit == "epoch",
                              prog_bar=name.endswith("alpha_mean"), logger=True)
        if self.monitor.should_stop:
            trainer.should_stop = True
