"""One copy of the weights: parameters re-pointed at a copy-on-write mapping of the checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from learner.config import Settings
from learner.model.runtime import load_runtime
from learner.model.shared_weights import map_checkpoint, read_header
from tests.tiny_model import tiny_model_dir  # noqa: F401  (fixture)

IDS = torch.tensor([[1, 5, 9, 14, 3]])


def _mapped_ranges(path: Path) -> list[tuple[int, int]]:
    """Address ranges of this process that map ``path`` (Linux's /proc/self/maps)."""
    ranges = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == str(path):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            ranges.append((start, end))
    return ranges


def _in_file(tensor: torch.Tensor, path: Path) -> bool:
    return any(start <= tensor.data_ptr() < end for start, end in _mapped_ranges(path))


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=IDS).logits.float()


def _bf16_copy(tiny_model_dir: Path, folder: Path) -> Path:  # noqa: F811
    """The tiny model saved in bf16, as the embedded model's prepared copy is."""
    import shutil

    from transformers import AutoModelForCausalLM

    shutil.copytree(tiny_model_dir, folder)
    for old in folder.glob("*.safetensors"):
        old.unlink()
    AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).save_pretrained(folder)
    return folder


def test_loaded_weights_are_the_checkpoint_file_itself(tiny_model_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    from transformers import AutoModelForCausalLM

    folder = _bf16_copy(tiny_model_dir, tmp_path / "bf16")
    runtime = load_runtime(Settings(model=str(folder)))
    reference = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval()
    checkpoint = next(folder.glob("*.safetensors"))
    names = read_header(checkpoint)
    mapped = [n for n, p in runtime.model.named_parameters() if _in_file(p, checkpoint)]
    assert mapped and set(mapped) == {n for n, _ in runtime.model.named_parameters()} & set(names)
    torch.testing.assert_close(_logits(runtime.model), _logits(reference), rtol=0, atol=0)


def test_a_mapped_weight_written_in_memory_leaves_the_file_alone(tiny_model_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    from transformers import AutoModelForCausalLM

    folder = _bf16_copy(tiny_model_dir, tmp_path / "copy")
    before = (folder / "model.safetensors").read_bytes()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    result = map_checkpoint(model, folder)
    assert result.mapped > 0 and result.mapped_bytes > 0
    with torch.no_grad():
        model.get_parameter("model.layers.0.mlp.up_proj.weight").add_(1.0)  # copy-on-write: private to us
    assert (folder / "model.safetensors").read_bytes() == before


def test_weights_of_another_dtype_keep_the_loaded_copy(tiny_model_dir: Path) -> None:  # noqa: F811
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)  # the file holds float32
    result = map_checkpoint(model, tiny_model_dir)
    assert result.mapped == 0 and result.kept > 0
    assert not any(_in_file(p, next(tiny_model_dir.glob("*.safetensors"))) for p in model.parameters())
