"""``sleepy-coder adapters``, ``data`` and ``status`` through the real CLI on a real store."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from benchmarks.idle_cycle import seed_accepted_fixes
from learner.cli.app import app
from learner.config import Settings
from learner.learn.examples import TrainingExample
from learner.store import Store

runner = CliRunner()

ROWS = [
    TrainingExample(
        route="mutability", messages=(), answer="", source="mutation", weight=1.0, file="main.rs",
        broken=f"fn f{i}() {{ let x = 1; x = 2; }}\n", fixed=f"fn f{i}() {{ let mut x = 1; x = 2; }}\n",
        code="E0384", rendered="error[E0384]: cannot assign twice",
    )
    for i in range(3)
]  # fmt: skip


def _versions(settings: Settings, tmp_path: Path) -> None:
    with Store.open(settings) as store:
        for name in ("v1", "v2"):
            folder = tmp_path / name
            folder.mkdir()
            store.register_candidate(name, route="share", path=folder, metrics={"gate": {
                "promote": True, "reason": "improved", "scores": {"mutability": {"before": [1, 4], "after": [3, 4]}},
            }})  # fmt: skip
            store.promote(name)


def test_adapters_list_show_and_rollback(settings: Settings, tmp_path: Path) -> None:
    _versions(settings, tmp_path)
    listed = json.loads(runner.invoke(app, ["adapters", "list", "--json"]).stdout)
    assert [(v["version"], v["status"]) for v in listed] == [("v2", "active"), ("v1", "retired")]
    shown = runner.invoke(app, ["adapters", "show", "v2"])
    assert shown.exit_code == 0 and "improved" in shown.stdout and "3/4" in shown.stdout
    back = runner.invoke(app, ["adapters", "rollback", "v2"])
    assert back.exit_code == 0 and "now uses v1" in back.stdout
    again = runner.invoke(app, ["adapters", "rollback", "v2"])
    assert again.exit_code == 2 and "rejected" in again.stderr
    with Store.open(settings) as store:
        assert store.active_versions()["share"].version == "v1"
    missing = runner.invoke(app, ["adapters", "show", "nope"])
    assert missing.exit_code == 2 and "no adapter version 'nope'" in missing.stderr


def test_data_export_writes_every_record(settings: Settings, tmp_path: Path) -> None:
    seed_accepted_fixes(settings, ROWS)
    out = tmp_path / "export.jsonl"
    result = runner.invoke(app, ["data", "export", "--out", str(out)])
    assert result.exit_code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["format"] == "sleepy-coder-store"
    assert sum(1 for e in lines[1:] if e["table"] == "outcomes") == 3


def test_forget_deletes_records_and_the_training_files_built_from_them(settings: Settings) -> None:
    fix_ids = seed_accepted_fixes(settings, ROWS)
    training = settings.training_dir / "mutability-x.jsonl"
    training.parent.mkdir(parents=True, exist_ok=True)
    training.write_text("{}\n")
    with Store.open(settings) as store:
        store.record_training_set("mutability", training, n_examples=1, sha="x", source_fix_ids=fix_ids[:1])
    refused = runner.invoke(app, ["data", "forget"], input="n\n")
    assert refused.exit_code == 1 and training.exists()
    result = runner.invoke(app, ["data", "forget", "--before", "2000-01-01", "--yes"])
    assert result.exit_code == 0 and training.exists()  # nothing that old
    result = runner.invoke(app, ["data", "forget", "--yes"])
    assert result.exit_code == 0 and "removed 1 training file" in result.stdout
    assert not training.exists()
    with Store.open(settings) as store:
        assert store.counts()["outcomes"] == 0 and store.training_sets() == []
    bad = runner.invoke(app, ["data", "forget", "--before", "yesterday", "--yes"])
    assert bad.exit_code != 0 and "not a date" in bad.output


def test_retention_command_reports_what_it_kept(settings: Settings) -> None:
    seed_accepted_fixes(settings, ROWS)
    result = runner.invoke(app, ["data", "retention"])
    assert result.exit_code == 0 and "deleted 0 records" in result.stdout


def test_status_json_shows_learner_routes_versions_and_disk(settings: Settings, tmp_path: Path) -> None:
    seed_accepted_fixes(settings, ROWS)
    _versions(settings, tmp_path)
    data = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert data["learner"]["running"] is False
    assert data["routes"]["mutability"]["examples"] == {"accepted": 3}
    assert data["routes"]["mutability"]["scores"]["after"] == [3, 4]
    assert data["active"] == {"share": "v2"} and data["disk_bytes"]["data"] > 0
    table = runner.invoke(app, ["status"])
    assert table.exit_code == 0 and "not running" in table.stdout and "share: v2" in table.stdout


def test_adapters_publish_writes_each_route_and_prints_the_vllm_command(
    settings: Settings, tiny_model_dir: Path
) -> None:
    from learner.model.runtime import load_runtime
    from tests.model.test_serving import register_share_set

    tiny = Settings.from_mapping({"model": str(tiny_model_dir)}, base=settings)
    register_share_set(tiny, load_runtime(tiny).model, ("moved-value", "mutability"))
    result = runner.invoke(app, ["adapters", "publish", "--model", str(tiny_model_dir)], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert f"moved-value: share-v1 -> {tiny.served_dir / 'moved-value-share-v1'}" in result.output
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True python -m vllm.entrypoints.openai.api_server" in result.output
    assert f"mutability={tiny.served_dir / 'mutability-share-v1'}" in result.output
    assert (tiny.served_dir / "mutability-share-v1" / "adapter_config.json").is_file()
    refused = runner.invoke(app, ["adapters", "publish", "--model", str(tiny_model_dir), "--to", "ftp://x"])
    assert refused.exit_code != 0 and "http(s) URL" in refused.output
