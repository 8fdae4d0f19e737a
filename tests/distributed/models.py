"""Small synthetic models for the distributed tests, and duck-typed tensors that fail on load."""
import numpy as np


def synthetic_model(seed: int):
    """7 dense layers of various shapes, a NaN layer (a failed row) and a Conv2D layer."""
    rng = np.random.default_rng(seed)
    model = {f"block{i}.fc.weight": rng.standard_normal((50 + 7 * i + seed, 30)) for i in range(7)}
    model["block3.bad.weight"] = np.full((40, 20), np.nan)
    model["conv.weight"] = rng.standard_normal((16, 8, 3, 3))
    return model


def tensor_class():
    """A torch-like tensor class defined at call time, so that Ray pickles it by value (workers cannot
    import the test modules). Each load is appended to `log`; with `crash_marker`, the first load in any
    process ends that process (os._exit) and leaves the marker, so the retry succeeds; with `raises`, every
    load raises it; with crash_always, every load ends its process."""
    import os

    class Device:
        type = "cpu"

    class LoggedTensor:
        def __init__(self, array, name, log=None, crash_marker=None, raises=None, crash_always=False):
            self.array, self.name, self.log, self.crash_marker, self.raises = array, name, log, crash_marker, raises
            self.crash_always = crash_always
            self.shape, self.dtype, self.device = array.shape, str(array.dtype), Device()

        def detach(self):
            return self

        def numpy(self):
            if self.raises is not None:
                raise self.raises(f"cannot read {self.name}")
            if self.crash_always:
                os._exit(1)
            if self.crash_marker is not None and not os.path.exists(self.crash_marker):
                open(self.crash_marker, "w").close()
                os._exit(1)  # the worker dies mid-task, as on a lost node
            if self.log is not None:
                with open(self.log, "a") as f:
                    f.write(f"{self.name}\n")
            return self.array

    return LoggedTensor


def broken_tensor_model(error):
    """4 dense layers; the second raises `error` whenever it is loaded."""
    rng = np.random.default_rng(7)
    tensor = tensor_class()
    model = {f"l{i}.weight": rng.standard_normal((40, 20)) for i in range(4)}
    model["l1.weight"] = tensor(model["l1.weight"], "l1", raises=error)
    return model
