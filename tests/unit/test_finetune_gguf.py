"""The GGUF LoRA writer: llama.cpp tensor names, shapes, q/k row order, adapter metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader
from safetensors.numpy import save_file

from triptych.finetune.gguf_adapter import AdapterConversionError, gguf_tensor_name, peft_to_gguf, permute_rows
from triptych.llm.server import bundled_model_path, gguf_architecture


def test_hf_module_names_map_to_llama_cpp_tensors() -> None:
    prefix = "base_model.model.model.layers.11"
    assert gguf_tensor_name(f"{prefix}.self_attn.q_proj.lora_A.weight") == "blk.11.attn_q.weight.lora_a"
    assert gguf_tensor_name(f"{prefix}.self_attn.o_proj.lora_B.weight") == "blk.11.attn_output.weight.lora_b"
    assert gguf_tensor_name(f"{prefix}.mlp.down_proj.lora_A.weight") == "blk.11.ffn_down.weight.lora_a"
    with pytest.raises(AdapterConversionError, match="no llama.cpp tensor"):
        gguf_tensor_name(f"{prefix}.mlp.act_fn.lora_A.weight")


def test_row_permutation_is_what_transformers_undoes_when_loading_a_gguf() -> None:
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    reverse = LlamaTensorProcessor._reverse_permute_weights
    q = np.arange(576 * 4, dtype=np.float32).reshape(576, 4)
    k = np.arange(192 * 4, dtype=np.float32).reshape(192, 4)
    assert np.array_equal(reverse(None, permute_rows(q, 9), 9, 9), q)
    assert np.array_equal(reverse(None, permute_rows(k, 3), 9, 3), k)  # k: n_head_kv heads
    assert not np.array_equal(permute_rows(q, 9), q)


def write_peft(folder: Path, rank: int = 4, alpha: float = 8.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shapes = {"self_attn.q_proj": (576, 576), "self_attn.k_proj": (192, 576), "mlp.down_proj": (576, 1536)}
    tensors = {}
    for module, (n_out, n_in) in shapes.items():
        key = f"base_model.model.model.layers.0.{module}"
        tensors[f"{key}.lora_A.weight"] = rng.standard_normal((rank, n_in)).astype(np.float32)
        tensors[f"{key}.lora_B.weight"] = rng.standard_normal((n_out, rank)).astype(np.float32)
    folder.mkdir()
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "lora_alpha": alpha}))
    return tensors


def test_peft_adapter_becomes_a_llama_cpp_lora_gguf(tmp_path: Path) -> None:
    tensors = write_peft(tmp_path / "adapter")
    out = peft_to_gguf(tmp_path / "adapter", bundled_model_path(), tmp_path / "adapter.gguf")
    reader = GGUFReader(str(out))
    meta = {k: reader.get_field(k).contents() for k in ("general.type", "adapter.type", "adapter.lora.alpha")}
    assert meta == {"general.type": "adapter", "adapter.type": "lora", "adapter.lora.alpha": 8.0}
    assert gguf_architecture(out) == "llama"  # what LocalModels checks against the base
    got = {t.name: t for t in reader.tensors}
    assert set(got) == {f"blk.0.{n}.weight.lora_{ab}" for n in ("attn_q", "attn_k", "ffn_down") for ab in "ab"}
    # ggml shapes: lora_a [n_in, r], lora_b [r, n_out]; F16
    assert list(got["blk.0.ffn_down.weight.lora_a"].shape) == [1536, 4]
    assert list(got["blk.0.ffn_down.weight.lora_b"].shape) == [4, 576]
    assert got["blk.0.attn_k.weight.lora_b"].tensor_type.name == "F16"
    prefix = "base_model.model.model.layers.0"
    down_a = np.asarray(got["blk.0.ffn_down.weight.lora_a"].data, dtype=np.float32)
    np.testing.assert_allclose(down_a, tensors[f"{prefix}.mlp.down_proj.lora_A.weight"], rtol=1e-3, atol=1e-3)
    k_b = np.asarray(got["blk.0.attn_k.weight.lora_b"].data, dtype=np.float32)
    np.testing.assert_allclose(k_b, permute_rows(tensors[f"{prefix}.self_attn.k_proj.lora_B.weight"], 3), atol=2e-3)
    q_a = np.asarray(got["blk.0.attn_q.weight.lora_a"].data, dtype=np.float32)
    np.testing.assert_allclose(q_a, tensors[f"{prefix}.self_attn.q_proj.lora_A.weight"], atol=2e-3)
