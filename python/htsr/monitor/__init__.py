"""Training monitor: per-layer alpha of a live model every N steps/epochs, a history table, logging and an
early-stop signal when the mean alpha falls below a threshold (2 by default).

    mon = htsr.monitor.AlphaMonitor(model, every=100, history="alpha.csv")   # plain PyTorch loop
    htsr.monitor.HTSRTrainerCallback(every=100)        # transformers.Trainer(callbacks=[...])
    htsr.monitor.HTSRLightningCallback(every=1)        # lightning.Trainer(callbacks=[...])
    htsr.monitor.plot_history("alpha.csv", path="alpha.png")

The two callbacks import transformers / lightning on first use."""
from .alpha_monitor import HISTORY_COLUMNS, AlphaMonitor, history_rows, load_history
from .plot import plot_history

__all__ = ["AlphaMonitor", "HTSRTrainerCallback", "HTSRLightningCallback", "plot_history", "load_history",
           "history_rows", "HISTORY_COLUMNS"]


def __getattr__(name):
    if name == "HTSRTrainerCallback":
        from .hf import HTSRTrainerCallback

        return HTSRTrainerCallback
    if name == "HTSRLightningCallback":
        from .lightning import HTSRLightningCallback

        return HTSRLightningCallback
    raise AttributeError(f"module 'htsr.monitor' has no attribute {name!r}")
