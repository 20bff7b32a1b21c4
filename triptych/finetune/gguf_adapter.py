"""Convert a PEFT LoRA adapter to a GGUF LoRA adapter that llama.cpp loads with `--lora_path`.

Written on the PyPI `gguf` package's GGUFWriter. llama.cpp expects, per adapted projection,
`blk.N.<name>.weight.lora_a` (ggml shape [n_in, r], i.e. PEFT's lora_A [r, n_in]) and
`.lora_b` ([r, n_out], i.e. PEFT's lora_B [n_out, r]), with `general.type=adapter`,
`adapter.type=lora` and `adapter.lora.alpha` (llama.cpp scales by alpha / r).

One subtlety: for the llama architecture, llama.cpp stores attn_q/attn_k with their rows permuted
for its rotary embedding layout (transformers undoes that when it loads the GGUF). LoRA's B matrix
maps into those rows, so lora_b of q_proj and k_proj gets the same row permutation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

HF_TO_GGUF = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
SUPPORTED_ARCHITECTURES = ("llama",)
_KEY = re.compile(r"layers\.(?P<layer>\d+)\.(?P<module>\w+\.\w+)\.lora_(?P<ab>[AB])\.weight$")


class AdapterConversionError(ValueError):
    """The adapter cannot be converted for this base model; the message says why."""


def permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """The row order llama.cpp uses for q/k in the llama architecture (rotary halves interleaved)."""
    rows = weights.shape[0]
    return weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def gguf_tensor_name(peft_key: str) -> str:
    """`base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight` -> `blk.3.attn_q.weight.lora_a`."""
    m = _KEY.search(peft_key)
    if m is None or m["module"] not in HF_TO_GGUF:
        raise AdapterConversionError(f"no llama.cpp tensor for {peft_key!r}; supported: {', '.join(HF_TO_GGUF)}")
    return f"blk.{m['layer']}.{HF_TO_GGUF[m['module']]}.weight.lora_{m['ab'].lower()}"


def base_model_info(base_gguf: Path) -> dict[str, object]:
    """Architecture and attention head counts of the base GGUF."""
    from gguf import GGUFReader

    reader = GGUFReader(str(base_gguf))

    def field(name: str) -> object:
        f = reader.get_field(name)
        return f.contents() if f is not None else None

    arch = str(field("general.architecture"))
    return {
        "architecture": arch,
        "n_head": field(f"{arch}.attention.head_count"),
        "n_head_kv": field(f"{arch}.attention.head_count_kv") or field(f"{arch}.attention.head_count"),
    }


def peft_to_gguf(adapter_dir: Path, base_gguf: Path, out_path: Path, name: str = "triptych-lora") -> Path:
    """Write `adapter_dir` (PEFT: adapter_config.json + adapter_model.safetensors) as a GGUF LoRA adapter."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    info = base_model_info(base_gguf)
    arch = str(info["architecture"])
    if arch not in SUPPORTED_ARCHITECTURES:
        raise AdapterConversionError(
            f"base model architecture {arch!r} is not supported by the adapter writer "
            f"(supported: {', '.join(SUPPORTED_ARCHITECTURES)})"
        )
    if config.get("use_dora") or config.get("use_rslora"):
        raise AdapterConversionError("DoRA / rsLoRA adapters cannot be served by llama.cpp as plain LoRA")
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    writer = gguf.GGUFWriter(str(out_path), arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("general.name", name)
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(config["lora_alpha"]))
    n_head, n_head_kv = int(info["n_head"]), int(info["n_head_kv"])  # type: ignore[call-overload]
    for key in sorted(tensors):
        data = tensors[key].astype(np.float32)
        tensor_name = gguf_tensor_name(key)
        if tensor_name.endswith("lora_b") and ".attn_q." in tensor_name:
            data = permute_rows(data, n_head)
        elif tensor_name.endswith("lora_b") and ".attn_k." in tensor_name:
            data = permute_rows(data, n_head_kv)
        writer.add_tensor(tensor_name, np.ascontiguousarray(data.astype(np.float16)))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_path
