"""Layer ids of sources without a module order (safetensors, GGUF) follow the model: blocks by their number,
inside a block the order the Hugging Face module registers its layers. Checked against the modules
themselves (transformers, built on the meta device: only names and shapes are needed)."""
import numpy as np
import pytest

import htsr
from htsr.sources.model_order import in_model_order
from raw_model_files import f32_gguf, random_tensors

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
st_torch = pytest.importorskip("safetensors.torch")


def order(names):
    return in_model_order(names, name=lambda n: n)


def test_blocks_by_number_not_by_text():
    names = [f"model.layers.{i}.mlp.down_proj.weight" for i in (0, 1, 10, 11, 2, 3)]
    assert order(names) == [f"model.layers.{i}.mlp.down_proj.weight" for i in (0, 1, 2, 3, 10, 11)]


def test_llama_block_in_module_order():
    block = ["mlp.down_proj", "mlp.gate_proj", "mlp.up_proj", "self_attn.k_proj", "self_attn.o_proj",
             "self_attn.q_proj", "self_attn.v_proj"]
    assert order([f"{b}.weight" for b in block]) == [f"{b}.weight" for b in (
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
        "mlp.up_proj", "mlp.down_proj")]


def test_unknown_names_keep_file_order_and_compare_numbers():
    assert order(["zeta.weight", "alpha.weight"]) == ["zeta.weight", "alpha.weight"]
    assert order(["conv10.weight", "conv2.weight", "conv1.weight"]) == ["conv1.weight", "conv2.weight",
                                                                        "conv10.weight"]
    assert order(["head.weight", "body.weight"]) == ["body.weight", "head.weight"]  # heads last


def module_names(model):
    return list(htsr.describe(model)["longname"])


def file_names(path):
    return list(htsr.describe(path)["longname"])


def assert_same_order(ours, module):
    """Every layer both list appears in the same relative order."""
    common = set(ours) & set(module)
    assert len(common) >= 0.9 * len(module), sorted(set(module) - set(ours))
    assert [n for n in ours if n in common] == [n for n in module if n in common]


TINY = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=12, num_attention_heads=4)
ARCHITECTURES = {
    "llama": lambda: transformers.LlamaConfig(num_key_value_heads=2, **TINY),
    "qwen3": lambda: transformers.Qwen3Config(num_key_value_heads=2, head_dim=8, **TINY),
    "gemma2": lambda: transformers.Gemma2Config(num_key_value_heads=2, head_dim=8, **TINY),
    "phi3": lambda: transformers.Phi3Config(num_key_value_heads=4, pad_token_id=0, **TINY),
    "bert": lambda: transformers.BertConfig(**TINY),
    "gpt_neox": lambda: transformers.GPTNeoXConfig(**TINY),
    "gpt2": lambda: transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=12, n_head=4),
    "t5": lambda: transformers.T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=48, num_layers=11, num_heads=4),
}


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_safetensors_of_a_hf_model_lists_layers_in_module_order(tmp_path, arch):
    torch.manual_seed(0)
    model = transformers.AutoModel.from_config(ARCHITECTURES[arch]()) if arch in ("bert", "gpt2", "t5") else \
        transformers.AutoModelForCausalLM.from_config(ARCHITECTURES[arch]())
    # the safetensors writer stores tensors sorted by name (tied tensors saved as copies)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    path = tmp_path / f"{arch}.safetensors"
    st_torch.save_file(state, str(path))
    ours = file_names(path)
    assert_same_order(ours, module_names(model))
    ids = list(htsr.describe(path)["layer_id"])
    assert ids == sorted(ids)


def test_minilm_safetensors_in_bert_module_order(minilm_dir):
    config = transformers.BertConfig.from_json_file(str(minilm_dir / "config.json"))
    with torch.device("meta"):
        model = transformers.BertModel(config)
    ours = file_names(minilm_dir)
    assert ours[:2] == ["embeddings.word_embeddings", "embeddings.position_embeddings"]
    assert ours[2:8] == [f"encoder.layer.0.{n}" for n in ("attention.self.query", "attention.self.key",
                                                          "attention.self.value", "attention.output.dense",
                                                          "intermediate.dense", "output.dense")]
    assert_same_order(ours, module_names(model))


def smollm2_module(gguf_file):
    """SmolLM2-135M as transformers builds it, from the hyperparameters in its GGUF metadata."""
    from htsr.sources.gguf import GGUFFile

    meta = GGUFFile(str(gguf_file)).metadata
    config = transformers.LlamaConfig(
        vocab_size=meta["llama.vocab_size"], hidden_size=meta["llama.embedding_length"],
        intermediate_size=meta["llama.feed_forward_length"], num_hidden_layers=meta["llama.block_count"],
        num_attention_heads=meta["llama.attention.head_count"],
        num_key_value_heads=meta["llama.attention.head_count_kv"], tie_word_embeddings=True)
    with torch.device("meta"):
        return transformers.LlamaForCausalLM(config)


def test_smollm2_gguf_lists_layers_in_module_order(smollm2_gguf):
    ours, module = file_names(smollm2_gguf), module_names(smollm2_module(smollm2_gguf))
    # the GGUF file has no lm_head: its output layer is tied to the embedding
    assert set(module) - set(ours) == {"lm_head"} and set(ours) <= set(module)
    assert ours == [n for n in module if n != "lm_head"]
    assert ours.index("model.layers.2.self_attn.q_proj") < ours.index("model.layers.10.self_attn.q_proj")


@pytest.mark.slow
def test_smollm2_analyze_ids_follow_depth(smollm2_gguf):
    details = htsr.analyze(smollm2_gguf)
    module = [n for n in module_names(smollm2_module(smollm2_gguf)) if n != "lm_head"]
    assert list(details.sort_values("layer_id")["longname"]) == module
    assert list(details["longname"]) == module
    depth = [int(n.split(".")[2]) for n in module if n.startswith("model.layers.")]
    assert depth == sorted(depth)


def test_gguf_block_numbers_ordered_numerically(tmp_path):
    gguf = pytest.importorskip("gguf")  # noqa: F841
    names = [f"blk.{i}.attn_q.weight" for i in (0, 1, 10, 11, 2)]
    path = tmp_path / "m.gguf"
    path.write_bytes(f32_gguf(random_tensors({n: (24, 16) for n in names})))
    d = htsr.describe(path)
    assert list(d["longname"]) == [f"model.layers.{i}.self_attn.q_proj" for i in (0, 1, 2, 10, 11)]
    assert list(np.diff(d["layer_id"])) == [1] * 4


def test_lora_adapter_rows_in_model_order(tmp_path):
    import json

    modules = [f"model.layers.{i}.{proj}" for i in (0, 1, 2, 10) for proj in ("self_attn.q_proj", "mlp.down_proj")]
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for module in modules:
        tensors[f"base_model.model.{module}.lora_A.weight"] = torch.randn(4, 24, generator=g)
        tensors[f"base_model.model.{module}.lora_B.weight"] = torch.randn(32, 4, generator=g)
    st_torch.save_file(tensors, str(tmp_path / "adapter_model.safetensors"))  # stored sorted by name
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8}))
    assert list(htsr.analyze(tmp_path)["longname"]) == modules
