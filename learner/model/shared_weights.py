"""One copy of the weights: the server and the learner map the same safetensors file instead of each
holding a private copy.

transformers reads a checkpoint into freshly allocated memory, so two processes with the same
model (the editor's server and the idle learner) hold it twice (3.2 GB + 1.5 GB peak RSS measured
before this module). Both only ever *read* the base weights: adapters are forward hooks and the
learner trains only their coefficients (the base model's parameters have ``requires_grad`` off).
So after loading, each parameter whose bytes lie in the checkpoint with the same dtype and shape
is re-pointed at a private, copy-on-write mapping of that file
(:meth:`torch.UntypedStorage.from_file` with ``shared=False``): the kernel keeps one copy of those
pages in its page cache for every process that maps the file, and nothing a process does can
change the file. The loaded copy is then freed.

Only where it applies: CPU, an unsharded or sharded ``*.safetensors`` checkpoint in the model's
folder, tensors whose dtype is the model's and whose offset is aligned. Anything else keeps
transformers' copy; the result says how many tensors were mapped.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import torch

_DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64", "I64": "int64", "I32": "int32"}


@dataclass(frozen=True)
class MappedWeights:
    """What :func:`map_checkpoint` did: tensors now backed by the file, and those left as loaded."""

    files: tuple[Path, ...]
    mapped: int
    kept: int
    mapped_bytes: int


@dataclass(frozen=True)
class _Entry:
    file: Path
    dtype: str
    shape: tuple[int, ...]
    offset: int  # bytes from the start of the file


def read_header(path: Path) -> dict[str, _Entry]:
    """The tensors of one safetensors file: name -> dtype, shape and absolute byte offset."""
    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
    start = 8 + size
    entries = {}
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        begin, _end = info["data_offsets"]
        entries[name] = _Entry(path, str(info["dtype"]), tuple(int(d) for d in info["shape"]), start + int(begin))
    return entries


def map_checkpoint(model: Any, folder: Path) -> MappedWeights:
    """Re-point ``model``'s parameters and buffers at copy-on-write mappings of ``folder``'s safetensors."""
    import torch

    files = tuple(sorted(Path(folder).glob("*.safetensors")))
    entries: dict[str, _Entry] = {}
    for file in files:
        entries.update(read_header(file))
    storages: dict[Path, torch.UntypedStorage] = {}
    tensors = dict(model.named_parameters(remove_duplicate=False))
    tensors.update(dict(model.named_buffers(remove_duplicate=False)))
    mapped = kept = mapped_bytes = 0
    done: set[int] = set()
    for name, tensor in tensors.items():
        if id(tensor) in done:  # a tied weight (lm_head = embed_tokens): one parameter, mapped once
            continue
        entry = entries.get(name)
        view = _view(entry, tensor, storages) if entry is not None else None
        if view is None:
            kept += 1
            continue
        with torch.no_grad():
            tensor.data = view
        done.add(id(tensor))
        mapped += 1
        mapped_bytes += view.numel() * view.element_size()
    return MappedWeights(files, mapped, kept, mapped_bytes)


def _view(entry: _Entry, tensor: torch.Tensor, storages: dict[Path, torch.UntypedStorage]) -> torch.Tensor | None:
    """``entry``'s bytes as a tensor like ``tensor`` (None when dtype, shape, device or alignment differ)."""
    import torch

    dtype = getattr(torch, _DTYPES.get(entry.dtype, ""), None)
    if tensor.device.type != "cpu" or dtype is None or dtype != tensor.dtype or entry.shape != tuple(tensor.shape):
        return None
    size = tensor.element_size()
    if entry.offset % size:
        return None
    if entry.file not in storages:
        nbytes = entry.file.stat().st_size
        mapping = torch.UntypedStorage.from_file(str(entry.file), shared=False, nbytes=nbytes)
        storages[entry.file] = cast("torch.UntypedStorage", mapping)
    storage = storages[entry.file]
    view = torch.empty(0, dtype=dtype)
    view.set_(storage, entry.offset // size, entry.shape, _contiguous_strides(entry.shape))
    return view


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides = []
    step = 1
    for dim in reversed(shape):
        strides.append(step)
        step *= max(dim, 1)
    return tuple(reversed(strides))
