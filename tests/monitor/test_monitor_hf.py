"""HTSRTrainerCallback: with a tiny transformers.Trainer on CPU, and called directly with real
TrainerState / TrainerControl objects."""
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # transformers.Trainer needs it

from transformers import Trainer, TrainerControl, TrainerState, TrainingArguments  # noqa: E402

from htsr.monitor import HTSRTrainerCallback, load_history  # noqa: E402
from monitor_models import tiny_mlp  # noqa: E402


class Classifier(torch.nn.Module):
    """The minimal model Trainer accepts: forward(x, labels) -> {'loss', 'logits'}."""

    def __init__(self, heavy_tailed: bool):
        super().__init__()
        self.net = tiny_mlp(heavy_tailed=heavy_tailed)

    def forward(self, x, labels=None):
        logits = self.net(x)
        loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return {"loss": loss, "logits": logits}


def dataset(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 32, generator=g)
    return [{"x": x[i], "labels": x[i, :10].argmax()} for i in range(n)]


def make_trainer(tmp_path, heavy_tailed, callbacks=(), max_steps=6):
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=max_steps, per_device_train_batch_size=8,
                             learning_rate=1e-4, logging_steps=1000, save_strategy="no", report_to=[],
                             use_cpu=True, disable_tqdm=True, dataloader_num_workers=0, seed=0)
    return Trainer(model=Classifier(heavy_tailed), args=args, train_dataset=dataset(), callbacks=list(callbacks))


def test_trainer_runs_to_the_end_on_a_healthy_model(tmp_path):
    cb = HTSRTrainerCallback(every=2, history=str(tmp_path / "h.csv"), device="cpu")
    trainer = make_trainer(tmp_path, heavy_tailed=False, callbacks=[cb])
    trainer.train()
    assert trainer.state.global_step == 6
    assert sorted(set(load_history(tmp_path / "h.csv")["step"])) == [2, 4, 6]
    assert not cb.monitor.should_stop
    logged = [entry for entry in trainer.state.log_history if "htsr/alpha_mean" in entry]
    assert [entry["step"] for entry in logged] == [2, 4, 6]
    assert logged[-1]["htsr/alpha_mean"] == pytest.approx(cb.monitor.last["alpha"].mean())


def test_trainer_stops_on_the_overfit_case(tmp_path):
    trainer = make_trainer(tmp_path, heavy_tailed=True)
    cb = HTSRTrainerCallback.attach(trainer, every=2, history=str(tmp_path / "h.parquet"), device="cpu")
    trainer.train()
    assert cb.monitor.should_stop
    assert trainer.state.global_step == 2  # the first measurement fired
    assert list(load_history(tmp_path / "h.parquet")["step"].unique()) == [2]
    logged = [entry for entry in trainer.state.log_history if "htsr/alpha_mean" in entry]
    assert len(logged) == 1 and logged[0]["htsr/alpha_mean"] < 2  # through trainer.log


def test_callback_methods_with_real_state_and_control(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True)
    state, control = TrainerState(), TrainerControl()
    model = tiny_mlp()
    cb = HTSRTrainerCallback(every=3, stop_below=2.0, log_per_layer=True)
    for step in (1, 2):
        state.global_step = step
        assert cb.on_step_end(args, state, control, model=model) is control
    assert cb.monitor.last is None and not control.should_log
    state.global_step, state.epoch = 3, 0.5
    cb.on_step_end(args, state, control, model=model)
    assert control.should_log and not control.should_training_stop
    logs = {"loss": 1.0}
    cb.on_log(args, state, control, logs=logs)
    assert logs["htsr/alpha_mean"] == pytest.approx(cb.monitor.last["alpha"].mean()) and "htsr/alpha/0" in logs
    assert cb.history["epoch"].unique().tolist() == [0.5]
    # the over-fit case at the next measurement
    state.global_step, control = 6, TrainerControl()
    cb.on_step_end(args, state, control, model=tiny_mlp(heavy_tailed=True))
    assert control.should_training_stop


def test_epoch_unit(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True)
    state, control = TrainerState(), TrainerControl()
    cb = HTSRTrainerCallback(every=2, unit="epoch")
    state.global_step, state.epoch = 10, 1.0
    cb.on_step_end(args, state, control, model=tiny_mlp())
    cb.on_epoch_end(args, state, control, model=tiny_mlp())
    assert cb.monitor.last is None
    state.global_step, state.epoch = 20, 2.0
    cb.on_epoch_end(args, state, control, model=tiny_mlp())
    assert cb.history["step"].unique().tolist() == [20]
    with pytest.raises(ValueError, match="unit"):
        HTSRTrainerCallback(unit="batch")
