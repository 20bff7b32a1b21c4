"""The base model for training: the same GGUF the embedded server runs, converted once to safetensors.

transformers loads a GGUF (`gguf_file=`, with accelerate installed) by dequantising it to float, but
marks the model quantized, which blocks saving and training. For these architectures the layers are
already plain float, so the mark is removed and the model saved once under
data_dir/base_models/<sha256 prefix>/, keyed by the GGUF's hash; later runs load that in a fraction
of a second. The tokenizer comes from the GGUF too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_DIR = "base_models"
MARKER = "triptych_base.json"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """The file's sha256 (hex)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def cached_base_dir(gguf_path: Path, data_dir: Path, sha256: str | None = None) -> Path:
    """A folder holding the GGUF's weights as safetensors and its tokenizer (converted on first use)."""
    sha = sha256 or file_sha256(gguf_path)
    target = data_dir / CACHE_DIR / sha[:16]
    if (target / MARKER).is_file():
        return target
    log.info("converting %s to safetensors under %s (once)", gguf_path.name, target)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # callers show their own progress

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype="float32")
    # The layers are plain float after dequantising: drop the "quantized" mark so it can be saved.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps({"gguf": str(gguf_path), "sha256": sha}, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_base(base_dir: Path, device: str = "cpu") -> tuple[Any, Any]:
    """(model in fp32 on `device`, tokenizer) from a cached base folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype="float32").to(device)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def pick_device() -> str:
    """'cuda' when a GPU is present, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
