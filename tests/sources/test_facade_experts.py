"""The compatible facade reads a mixture-of-experts folder as htsr.analyze does: one row per expert matrix, never
a fused (experts, rows, cols) stack analyzed as if it were one matrix (that row said 'success' with a wrong alpha)."""
import numpy as np
import pytest

import htsr

import quantized_checkpoints as qc


def test_facade_cuts_fused_expert_stacks_per_expert(tmp_path):
    pytest.importorskip("transformers")
    folder, reference = qc.gpt_oss_slice(tmp_path / "gpt-oss-slice")
    facade = htsr.WeightWatcher(str(folder)).analyze().set_index("longname")
    assert not any(name.endswith(("experts.gate_up_proj", "experts.down_proj")) for name in facade.index)
    assert set(reference) <= set(facade.index)
    # each expert row is the analysis of that expert's dequantized matrix, as the facade reads a plain state dict
    plain = htsr.WeightWatcher({f"{name}.weight": matrix for name, matrix in reference.items()}).analyze()
    plain = plain.set_index("longname")
    for name in reference:
        got, want = facade.loc[name], plain.loc[name]
        assert (got["N"], got["M"], got["status"]) == (want["N"], want["M"], "success"), name
        np.testing.assert_allclose([got["alpha"], got["lambda_max"]], [want["alpha"], want["lambda_max"]],
                                   rtol=1e-9, err_msg=name)


def test_facade_keeps_its_ids_on_a_model_without_experts(tmp_path):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    tensors = {f"model.layers.{i}.mlp.down_proj.weight": torch.randn(64, 32, generator=g) for i in range(3)}
    folder = qc.save_folder(tmp_path / "dense", tensors, {"model_type": "llama"})
    facade = htsr.WeightWatcher(str(folder)).analyze()
    assert list(facade["layer_id"]) == [0, 1, 2]
