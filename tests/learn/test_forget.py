"""Forget means forget: no copy of the user's code that sleepy-coder made survives it, and nothing outside
this data home is deleted.

Real parts: the fix pipeline on a real crate (so the scratch mirror and cargo's target dirs hold
the code), a real SQLite file in WAL mode with a second connection open (as the editor's server
keeps one), real training-set files.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from benchmarks.idle_cycle import seed_accepted_fixes
from learner.cli import app
from learner.config import Settings
from learner.learn.examples import TrainingExample
from learner.learn.forget import forget
from learner.store import Store
from tests.rust_fixtures import make_crate

TOKEN = "unique_ident_5f3a9c"
PROGRAM = f'fn main() {{\n    let {TOKEN} = String::from("x");\n    takes({TOKEN});\n}}\n\nfn takes(_s: &String) {{}}\n'


def _files_holding(token: bytes, *roots: Path) -> list[str]:
    return sorted(
        str(p) for root in roots if root.exists() for p in root.rglob("*") if p.is_file() and token in p.read_bytes()
    )


def test_forget_removes_every_copy_of_the_users_code(settings: Settings, tmp_path: Path) -> None:
    root = make_crate(tmp_path / "user", {"src/main.rs": PROGRAM})
    assert CliRunner().invoke(app, ["fix", str(root), "--no-model"]).exit_code == 0
    example = TrainingExample(
        route="mismatched-types", messages=(), answer="", source="store", weight=1.0, file="src/main.rs",
        broken=PROGRAM, fixed=PROGRAM.replace(f"takes({TOKEN})", f"takes(&{TOKEN})"), code="E0308",
        rendered=f"error[E0308]: mismatched types: {TOKEN}",
    )  # fmt: skip
    seed_accepted_fixes(settings, [example])
    set_path = settings.training_dir / "mismatched-types-abc.jsonl"
    set_path.parent.mkdir(parents=True, exist_ok=True)
    set_path.write_text(PROGRAM)
    server_connection = Store.open(settings)  # the editor's server keeps the store open
    try:
        with Store.open(settings) as store:
            store.record_training_set("mismatched-types", set_path, n_examples=1, sha="abc", source_fix_ids=[])
            assert _files_holding(TOKEN.encode(), settings.data_dir, settings.cache_dir)
            forget(settings, store)
        assert _files_holding(TOKEN.encode(), settings.data_dir, settings.cache_dir) == []
    finally:
        server_connection.close()
    assert (root / "src" / "main.rs").read_text() == PROGRAM  # the user's own file is theirs


def test_forget_never_deletes_a_file_outside_this_data_home(settings: Settings, tmp_path: Path) -> None:
    elsewhere = tmp_path / "another-home" / "training" / "set.jsonl"
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_text("{}\n")
    with Store.open(settings) as store:
        store.record_training_set("mutability", elsewhere, n_examples=1, sha="x", source_fix_ids=[])
        forgotten = forget(settings, store)
    assert elsewhere.exists()
    assert forgotten.counts.get("training_sets") == 1 and str(elsewhere) not in forgotten.files
