"""Can the embedded GGUF stay packed on this machine, and would it decode faster? (run by hand)

    python benchmarks/gguf_packed.py [--model embedded:qwen2.5-coder-0.5b-instruct] [--tokens 64]

Loads the joined GGUF with transformers asking it *not* to dequantize
(``GgufConfig(dequantize=False)``), reports which modules stayed packed, the weights' bytes and
dtypes, the process RSS and greedy tokens/s on one fix-sized prompt; then the same for the
prepared bf16 copy the product uses. Where transformers dequantizes anyway (its packed path
needs the Hub's ggml kernels and, as of transformers 5.24, an MPS device), both rows show the
same bf16 weights and the script says so: the bf16 copy stays, since Share's hooks need
ordinary ``nn.Linear`` modules.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from learner.config import Settings
from learner.model.assets import embedded_model, embedded_parts, prepare_embedded_model, verify_and_join

PROMPT = (
    "Fix the Rust compile error.\n\n```\nerror[E0384]: cannot assign twice to immutable variable `x`\n```\n\n"
    '```rust\nfn main() {\n    let x = 5;\n    x = 6;\n    println!("{x}");\n}\n```\n\n'
    "Reply with the corrected code only."
)


def rss_gb() -> float:
    return psutil.Process().memory_info().rss / 1024**3


def describe(model: Any, tokenizer: Any, tokens: int) -> dict[str, Any]:
    import torch

    packed = [n for n, m in model.named_modules() if type(m).__name__.startswith("Gguf")]
    dtypes: dict[str, int] = {}
    for p in model.parameters():
        dtypes[str(p.dtype)] = dtypes.get(str(p.dtype), 0) + p.numel() * p.element_size()
    encoded = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    input_ids = encoded["input_ids"]
    with torch.inference_mode():
        model.generate(input_ids, max_new_tokens=4, do_sample=False)  # warm-up
        started = time.perf_counter()
        out = model.generate(input_ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        seconds = time.perf_counter() - started
    made = out.shape[1] - input_ids.shape[1]
    return {
        "packed_modules": len(packed),
        "weight_bytes": {k: f"{v / 1024**3:.2f} GB" for k, v in dtypes.items()},
        "rss_gb": round(rss_gb(), 2),
        "tokens_per_s": round(made / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    settings = Settings() if args.model is None else replace(Settings(), model=args.model)
    model_info = embedded_model(settings.model)
    with tempfile.TemporaryDirectory(dir=settings.cache_dir) as tmp:
        gguf = verify_and_join(
            Path(tmp),
            parts=embedded_parts(model_info.packages, model_info.install_hint),
            expected_size=model_info.size,
            expected_sha256=model_info.sha256,
            name=model_info.gguf_name,
            install_hint=model_info.install_hint,
        )
        tokenizer = AutoTokenizer.from_pretrained(tmp, gguf_file=gguf.name)
        started = time.perf_counter()
        try:
            packed: Any = AutoModelForCausalLM.from_pretrained(
                tmp, gguf_file=gguf.name, dtype=torch.bfloat16, quantization_config=GgufConfig(dequantize=False)
            )
            row = {"load_s": round(time.perf_counter() - started, 1), **describe(packed, tokenizer, args.tokens)}
        except Exception as exc:  # report, whatever transformers raises for an unsupported packed load
            row = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        print(f"GGUF, dequantize=False: {row}")
        packed = None
        gc.collect()
    folder = prepare_embedded_model(settings)
    started = time.perf_counter()
    bf16: Any = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    row = {"load_s": round(time.perf_counter() - started, 1), **describe(bf16, tokenizer, args.tokens)}
    print(f"prepared bf16 copy: {row}")


if __name__ == "__main__":
    main()
