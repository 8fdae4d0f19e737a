"""HTSRLightningCallback with a tiny Lightning Trainer on CPU: history, logged metrics, trainer.should_stop."""
import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

from htsr.monitor import HTSRLightningCallback, load_history  # noqa: E402
from monitor_models import tiny_mlp  # noqa: E402


class TinyModule(pl.LightningModule):
    def __init__(self, heavy_tailed: bool):
        super().__init__()
        self.net = tiny_mlp(heavy_tailed=heavy_tailed)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-4)


def loader():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 32, generator=g)
    data = torch.utils.data.TensorDataset(x, x[:, :10].argmax(dim=1))
    return torch.utils.data.DataLoader(data, batch_size=8)


def fit(tmp_path, heavy_tailed, callback, max_epochs=3):
    trainer = pl.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=1, callbacks=[callback],
                         logger=pl.loggers.CSVLogger(str(tmp_path / "logs")), enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_train_batches=2,
                         num_sanity_val_steps=0, log_every_n_steps=1)
    trainer.fit(TinyModule(heavy_tailed), train_dataloaders=loader())
    return trainer


def test_epoch_unit_healthy_model_runs_all_epochs_and_logs(tmp_path):
    cb = HTSRLightningCallback(every=1, history=str(tmp_path / "h.csv"), device="cpu")
    trainer = fit(tmp_path, False, cb)
    assert trainer.current_epoch == 3 and not trainer.should_stop
    hist = load_history(tmp_path / "h.csv")
    assert hist["epoch"].unique().tolist() == [0, 1, 2]
    assert hist["step"].unique().tolist() == [2, 4, 6]
    assert trainer.callback_metrics["htsr/alpha_mean"].item() == pytest.approx(cb.monitor.last["alpha"].mean(),
                                                                               rel=1e-6)
    logged = (tmp_path / "logs").rglob("metrics.csv")
    assert any("htsr/alpha_mean" in open(p).read() for p in logged)  # reached the trainer's logger


def test_overfit_case_sets_trainer_should_stop(tmp_path):
    cb = HTSRLightningCallback(every=1, history=str(tmp_path / "h.parquet"), device="cpu")
    trainer = fit(tmp_path, True, cb)
    assert cb.monitor.should_stop and trainer.should_stop
    assert trainer.current_epoch == 1  # stopped after the first epoch of three
    assert load_history(tmp_path / "h.parquet")["epoch"].unique().tolist() == [0]


def test_step_unit(tmp_path):
    cb = HTSRLightningCallback(every=3, unit="step", stop_below=None)
    fit(tmp_path, True, cb)  # heavy-tailed, but stopping is disabled
    assert cb.history["step"].unique().tolist() == [3, 6]
    assert not cb.monitor.should_stop
