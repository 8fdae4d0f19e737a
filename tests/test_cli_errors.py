"""How the `htsr` command reports bad input and its own bugs: one `htsr: error:` line and exit 2 for a file it
cannot read (never a traceback; --debug adds one), exit 1 only when some layers failed, and exit 3 with an
`internal error` line for an unexpected exception."""
import subprocess
import sys

import pytest

from htsr import cli
from raw_model_files import (GGUF_ARRAY, GGUF_STRING, f32_gguf, gguf_kv, gguf_value, nested_array, random_tensors,
                             safetensors_parts, write_safetensors)

SHAPES = {"a.weight": (64, 32), "b.weight": (48, 20)}


def broken_safetensors(path, field, value):
    header, data = safetensors_parts(random_tensors(SHAPES))
    header["b.weight"][field] = value
    return write_safetensors(path, header, data)


def deep_json(path):
    return write_safetensors(path, b'{"a.weight": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")


def gguf_with(path, kv):
    pytest.importorskip("gguf")
    path.write_bytes(f32_gguf(random_tensors({"blk.0.attn_q.weight": (48, 32)}), kvs=[kv]))
    return path


BAD_FILES = {
    "string_offsets": (lambda d: broken_safetensors(d / "m.safetensors", "data_offsets", ["0", "10"]), "data_offsets"),
    "float_offsets": (lambda d: broken_safetensors(d / "m.safetensors", "data_offsets", [0.5, 10.0]), "data_offsets"),
    "dtype_list": (lambda d: broken_safetensors(d / "m.safetensors", "dtype", ["F32"]), "dtype"),
    "dtype_int": (lambda d: broken_safetensors(d / "m.safetensors", "dtype", 7), "dtype"),
    "deep_json": (lambda d: deep_json(d / "m.safetensors"), "nested"),
    "gguf_deep_array": (lambda d: gguf_with(d / "m.gguf", gguf_kv("a.deep", GGUF_ARRAY, nested_array(5000))),
                        "a.deep"),
    "gguf_alignment_string": (lambda d: gguf_with(d / "m.gguf", gguf_kv("general.alignment", GGUF_STRING,
                                                                       gguf_value(GGUF_STRING, "x"))),
                              "general.alignment"),
}


@pytest.mark.parametrize("command", ["analyze", "describe"])
@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_is_one_error_line_and_exit_2(tmp_path, capsys, kind, command):
    make, field = BAD_FILES[kind]
    path = make(tmp_path)
    assert cli.main([command, str(path)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("htsr: error: ") and err.count("\n") == 1, err
    assert str(path) in err and field in err, err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    path = broken_safetensors(tmp_path / "m.safetensors", "dtype", ["F32"])
    assert cli.main(["analyze", str(path), "--debug"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "SourceError" in err
    assert err.rstrip().splitlines()[-1].startswith("htsr: error: ")


def test_internal_error_is_reported_with_its_own_exit_code(tmp_path, capsys, monkeypatch):
    import htsr

    def broken(*args, **kwargs):
        raise TypeError("an unexpected bug")

    monkeypatch.setattr(htsr, "analyze", broken)
    path = write_safetensors(tmp_path / "ok.safetensors", *safetensors_parts(random_tensors(SHAPES)))
    assert cli.main(["analyze", str(path)]) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.startswith("htsr: internal error: TypeError: an unexpected bug") and "--debug" in err, err
    assert "Traceback" not in err
    assert cli.main(["analyze", str(path), "--debug"]) == cli.EXIT_INTERNAL
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_damaged_tensors_are_failed_rows_exit_1(tmp_path, capsys):
    header, data = safetensors_parts(random_tensors(SHAPES))
    header["b.weight"]["shape"] = [2 ** 32, 2 ** 32]
    path = write_safetensors(tmp_path / "m.safetensors", header, data[: len(data) - 10])
    assert cli.main(["analyze", str(path), "--format", "csv"]) == cli.EXIT_LAYERS_FAILED
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "success" in captured.out and "b.weight" in captured.out


def test_python_dash_m_htsr_prints_no_traceback(tmp_path):
    path = deep_json(tmp_path / "deep.safetensors")
    run = subprocess.run([sys.executable, "-m", "htsr", "analyze", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("htsr: error: ") and "Traceback" not in run.stderr, run.stderr
