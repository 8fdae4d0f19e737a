"""--format and --out must agree (issue 11, item 12): a .csv/.json/.parquet file holds that format, a .txt file
holds text (table, csv or json), another extension takes whatever --format says. A mismatch is a usage error
(exit 2) raised before any analysis, and no file is written."""
import io
import json

import numpy as np
import pandas as pd
import pytest

from htsr import cli


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    st = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(4)
    path = tmp_path_factory.mktemp("fmt") / "m.safetensors"
    st.save_file({"a.weight": rng.standard_normal((64, 32)).astype(np.float32),
                  "b.weight": rng.standard_normal((48, 40)).astype(np.float32)}, str(path))
    return str(path)


@pytest.mark.parametrize("command", ["analyze", "describe", "compare"])
@pytest.mark.parametrize("name,fmt", [("x.csv", "parquet"), ("x.parquet", "csv"), ("x.json", "csv"),
                                      ("x.csv", "table"), ("x.txt", "parquet"), ("X.CSV", "json")])
def test_mismatched_format_and_extension_are_refused(model, tmp_path, capsys, command, name, fmt):
    out = tmp_path / name
    models = [model, model] if command == "compare" else [model]
    assert cli.main([command, *models, "--out", str(out), "--format", fmt]) == 2
    err = capsys.readouterr().err
    assert name in err and fmt in err, err
    assert not out.exists()


def test_matching_format_and_extension_are_written(model, tmp_path):
    assert cli.main(["analyze", model, "--out", str(tmp_path / "x.csv"), "--format", "csv"]) == 0
    assert list(pd.read_csv(tmp_path / "x.csv")["longname"]) == ["a", "b"]
    pytest.importorskip("pyarrow")
    assert cli.main(["analyze", model, "--out", str(tmp_path / "x.parquet"), "--format", "parquet"]) == 0
    assert list(pd.read_parquet(tmp_path / "x.parquet")["longname"]) == ["a", "b"]


def test_text_formats_into_a_txt_file(model, tmp_path):
    assert cli.main(["analyze", model, "--out", str(tmp_path / "x.txt"), "--format", "csv"]) == 0
    assert list(pd.read_csv(tmp_path / "x.txt")["longname"]) == ["a", "b"]
    assert cli.main(["analyze", model, "--out", str(tmp_path / "y.txt"), "--format", "json"]) == 0
    assert [r["longname"] for r in json.loads((tmp_path / "y.txt").read_text())] == ["a", "b"]


def test_other_extensions_take_the_given_format(model, tmp_path):
    pytest.importorskip("pyarrow")
    assert cli.main(["analyze", model, "--out", str(tmp_path / "x.dat"), "--format", "parquet"]) == 0
    assert (tmp_path / "x.dat").read_bytes()[:4] == b"PAR1"
    assert cli.main(["describe", model, "--out", str(tmp_path / "d.out"), "--format", "csv"]) == 0
    assert list(pd.read_csv(io.StringIO((tmp_path / "d.out").read_text()))["longname"]) == ["a", "b"]


def test_parquet_without_out_is_refused_before_analysis(model, capsys, monkeypatch):
    import htsr

    monkeypatch.setattr(htsr, "analyze", lambda *a, **k: pytest.fail("analyzed before refusing"))
    assert cli.main(["analyze", model, "--format", "parquet"]) == 2
    assert "--out" in capsys.readouterr().err
