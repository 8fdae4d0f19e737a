"""analyze_many on a local Ray (2 CPUs, started once for the module): equal to the serial engine, a worker
killed mid-task loses no layer, a failing chunk loses nothing else, and bad addresses are refused at once."""
import os
import time

import numpy as np
import pandas as pd
import pytest

import htsr
from htsr import cli

from .models import broken_tensor_model, synthetic_model, tensor_class

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def models():
    return {f"net{i}": synthetic_model(i) for i in range(3)}


def test_ray_equals_serial(models):
    serial = htsr.analyze_many(models, chunk_layers=2, mp_fit=True)
    on_ray = htsr.analyze_many(models, engine="ray", chunk_layers=2, mp_fit=True)
    pd.testing.assert_frame_equal(on_ray, serial)
    assert list(dict.fromkeys(on_ray["model"])) == ["net0", "net1", "net2"] and len(on_ray) == 3 * 9


def test_killed_worker_is_retried_and_loses_nothing(models, tmp_path):
    log, marker = tmp_path / "loads.log", tmp_path / "crashed"
    tensor = tensor_class()
    # float32 duck tensors that log each load; block5 of net1 kills its worker on its first load
    sources = {label: {name: tensor(np.asarray(w, dtype=np.float32), f"{label}/{name}", str(log),
                                    str(marker) if (label, name) == ("net1", "block5.fc.weight") else None)
                       for name, w in model.items()}
               for label, model in models.items()}
    out = tmp_path / "all.parquet"
    table = htsr.analyze_many(sources, engine="ray", chunk_layers=2, out=out, max_retries=2)
    assert marker.exists()  # the worker did die
    plain = {label: {k: np.asarray(w, dtype=np.float32) for k, w in model.items()} for label, model in models.items()}
    pd.testing.assert_frame_equal(table, htsr.analyze_many(plain, chunk_layers=2))
    assert len(pd.read_parquet(out)) == len(table) and not os.path.exists(f"{out}.parts")
    # Only the killed task ran again: every other layer was loaded once.
    loads = pd.Series(log.read_text().split()).value_counts()
    # block4 shares block5's chunk (ids 4, 5) and was loaded before the crash
    assert set(loads[loads > 1].index) == {"net1/block4.fc.weight"} and loads["net1/block4.fc.weight"] == 2
    assert loads["net1/block5.fc.weight"] == 1 and len(loads) == 3 * 9


def test_worker_that_always_dies_fails_only_its_chunk(models, tmp_path):
    tensor = tensor_class()
    doomed = dict(models["net0"])
    doomed["block0.fc.weight"] = tensor(doomed["block0.fc.weight"], "x", crash_always=True)  # kills every attempt
    table = htsr.analyze_many({"doomed": doomed, "net1": models["net1"]}, engine="ray", chunk_layers=2,
                              max_retries=1)
    rows = table[table["model"] == "doomed"]
    assert list(rows["status"].iloc[:2]) == ["failed", "failed"]
    assert "the task of layers 0..1 failed" in rows["message"].iloc[0] and "died 2 time(s)" in rows["message"].iloc[0]
    assert (rows["status"].iloc[2:] == htsr.analyze(models["net0"])["status"].iloc[2:].values).all()
    pd.testing.assert_frame_equal(table[table["model"] == "net1"].drop(columns="model").reset_index(drop=True),
                                  htsr.analyze(models["net1"]))


def test_exception_in_one_model_keeps_the_others(models):
    sources = dict(models, broken=broken_tensor_model(OSError))
    on_ray = htsr.analyze_many(sources, engine="ray", chunk_layers=2)
    pd.testing.assert_frame_equal(on_ray, htsr.analyze_many(sources, chunk_layers=2))
    broken = on_ray[on_ray["model"] == "broken"]
    assert list(broken["status"]) == ["failed", "failed", "success", "success"]
    assert "OSError: cannot read l1" in broken["message"].iloc[0]


def test_bad_addresses_are_refused_at_once(models):
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="127.0.0.1:1.*no Ray cluster reachable"):
        htsr.analyze_many(models, engine="ray", address="127.0.0.1:1")
    assert time.perf_counter() - start < 10
    for bad in ("localhost", "http://x:1/y", ""):
        with pytest.raises(ValueError, match="address"):
            htsr.analyze_many(models, engine="ray", address=bad)
    with pytest.raises(ValueError, match="device must be"):
        htsr.analyze_many(models, engine="ray", device="tpu")
    gcs = ray.get_runtime_context().gcs_address  # reachable, but this process is connected already
    with pytest.raises(ValueError, match="already initialized"):
        htsr.analyze_many(models, engine="ray", address=gcs)


def test_cli_ray(models, tmp_path, capsys):
    st = pytest.importorskip("safetensors.numpy")
    paths = []
    for label, model in models.items():
        paths.append(str(tmp_path / f"{label}.safetensors"))
        st.save_file({k: v.astype(np.float32) for k, v in model.items()}, paths[-1])
    out = tmp_path / "all.csv"
    assert cli.main(["analyze", *paths, "--out", str(out), "--chunk-layers", "3", "--device", "cpu", "--ray"]) == 1
    printed = capsys.readouterr().out
    assert "3 model(s) on Ray" in printed and "summary net2.safetensors" in printed
    written = pd.read_csv(out)
    assert list(dict.fromkeys(written["model"])) == [f"{label}.safetensors" for label in models]
    expected = htsr.analyze_many(paths, chunk_layers=3, device="cpu")
    assert np.allclose(written["alpha"], expected["alpha"], rtol=1e-12)
    assert cli.main(["analyze", *paths, "--ray=127.0.0.1:1"]) == 2
    assert "no Ray cluster reachable" in capsys.readouterr().err


HEAD = """
import sys, ray
ray.init(num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1")
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()  # runs until the test closes stdin
ray.shutdown()
"""
CLIENT = """
import sys
import pandas as pd
import htsr
from distributed.models import synthetic_model
models = {f"net{i}": synthetic_model(i) for i in range(2)}
table = htsr.analyze_many(models, engine="ray", address=sys.argv[1], chunk_layers=3)
pd.testing.assert_frame_equal(table, htsr.analyze_many(models, chunk_layers=3))
print("equal", len(table))
"""


def test_existing_cluster_address():
    """A cluster started by another process, reached by address= from a third one (this process has its own
    Ray already)."""
    import subprocess
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    package_root = os.path.dirname(os.path.dirname(htsr.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_root, os.path.dirname(here)]),
               RAY_AUTH_MODE="disabled")  # a private throw-away cluster: no token to share between processes
    head = subprocess.Popen([sys.executable, "-c", HEAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        address = head.stdout.readline().strip()
        assert address, "the head process did not start Ray"
        client = subprocess.run([sys.executable, "-c", CLIENT, address], capture_output=True, text=True, env=env,
                                timeout=300)
        assert client.returncode == 0, client.stderr[-3000:]
        assert client.stdout.split()[-2:] == ["equal", "18"]
    finally:
        head.stdin.close()
        head.wait(120)
