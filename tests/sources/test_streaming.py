"""Streaming: only the tensors of the batch being analyzed are mapped; finished tensors are released."""
import os

import numpy as np
import pytest

import htsr
from htsr import analysis

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc/self/maps")


def mapped_regions(path):
    real = os.path.realpath(path)
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if line.rstrip().endswith(real))


def resident_bytes(path):
    """Bytes of `path` resident in this process's maps of it (Rss summed over /proc/self/smaps)."""
    real, total, inside = os.path.realpath(path), 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(" ", 1)[0]
            if "-" in first and ":" not in first:  # a mapping header line
                inside = line.rstrip().endswith(real)
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1]) * 1024
    return total


def watch_batches(monkeypatch, path, seen):
    real = analysis.analyze_batch

    def watching(batch, opts, return_esd, *rest):
        rows = real(batch, opts, return_esd, *rest)
        seen.append((len(batch), mapped_regions(path), resident_bytes(path)))  # after the core read them
        return rows

    monkeypatch.setattr(analysis, "analyze_batch", watching)


def test_safetensors_tensors_are_mapped_per_batch(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    g = torch.Generator().manual_seed(0)
    tensor_bytes = 512 * 256 * 2
    state = {f"l{i:02d}.weight": torch.randn(512, 256, generator=g).to(torch.bfloat16) for i in range(16)}
    path = tmp_path / "m.safetensors"
    st_torch.save_file(state, str(path))
    monkeypatch.setattr(analysis, "BATCH_BYTES", 2 * tensor_bytes)  # two tensors per batch
    seen = []
    watch_batches(monkeypatch, path, seen)
    d = htsr.analyze(path)
    assert len(d) == 16 and (d["status"] == "success").all()
    assert len(seen) == 8 and all(n == 2 for n, _, _ in seen)
    assert max(m for _, m, _ in seen) <= 2, seen  # this batch's two tensors, not the whole file
    # resident pages: this batch's two tensors (+ fault-around slack), not every tensor read so far
    assert max(r for _, _, r in seen) <= 2 * tensor_bytes + 256 * 1024, seen
    assert seen[-1][2] > 0  # the measure does see the mapped weights
    assert mapped_regions(path) == 0  # nothing left mapped after the run


def test_gguf_tensors_are_mapped_per_batch(tmp_path, monkeypatch):
    gguf = pytest.importorskip("gguf")
    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "llama")
    rng = np.random.default_rng(0)
    for i in range(10):
        w.add_tensor(f"blk.{i}.attn_q.weight", rng.standard_normal((128, 64)).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    monkeypatch.setattr(analysis, "BATCH_BYTES", 128 * 64 * 2)  # one tensor per batch
    seen = []
    watch_batches(monkeypatch, tmp_path / "m.gguf", seen)
    d = htsr.analyze(tmp_path / "m.gguf")
    assert len(d) == 10 and (d["status"] == "success").all()
    assert max(m for _, m, _ in seen) <= 1, seen
    assert max(r for _, _, r in seen) <= 128 * 64 * 2 + 256 * 1024, seen
    assert mapped_regions(tmp_path / "m.gguf") == 0
