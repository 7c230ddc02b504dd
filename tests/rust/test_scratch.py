"""Scratch crates: a mirror that follows the user's tree, changes that are put back, and real cargo checks."""

from __future__ import annotations

from pathlib import Path

from learner.rust.crate import locate_crate
from learner.rust.scratch import ScratchCrate, crate_files, lone_file, write_program_crate
from tests.rust_fixtures import MOVED_VALUE_BIN, make_crate

FIXED_BIN = 'fn main() {\n    let s = String::from("hi");\n    println!("{}", s);\n}\n'


def test_sync_mirrors_the_crate_keeps_cargo_config_and_drops_removed_files(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "user", {"src/main.rs": FIXED_BIN})
    (root / ".cargo").mkdir()
    (root / ".cargo" / "config.toml").write_text("[net]\noffline = true\n")
    (root / "target").mkdir()
    (root / "target" / "junk").write_text("x")
    (root / "src" / "extra.rs").write_text("pub fn f() {}\n")
    scratch = ScratchCrate(locate_crate(root), tmp_path / "mirror", tmp_path / "target")
    scratch.sync()
    mirrored = {p.relative_to(scratch.path).as_posix() for p in crate_files(scratch.path)}
    assert {"Cargo.toml", "src/main.rs", "src/extra.rs", ".cargo/config.toml"} <= mirrored
    assert not (scratch.path / "target").exists()
    (root / "src" / "extra.rs").unlink()
    scratch.sync()
    assert not (scratch.path / "src" / "extra.rs").exists()


def test_the_mirror_leaves_secrets_and_large_assets_in_the_users_tree(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "user", {"src/main.rs": FIXED_BIN})
    (root / ".env").write_text("API_KEY=secret\n")
    (root / "assets").mkdir()
    (root / "assets" / "video.bin").write_bytes(b"\0" * (5 * 1024 * 1024))
    (root / "assets" / "small.txt").write_text("included by include_str!\n")
    scratch = ScratchCrate(locate_crate(root), tmp_path / "mirror", tmp_path / "target")
    scratch.sync()
    mirrored = {p.relative_to(scratch.path).as_posix() for p in crate_files(scratch.path)}
    assert "assets/small.txt" in mirrored and "src/main.rs" in mirrored
    assert ".env" not in mirrored and "assets/video.bin" not in mirrored
    assert not (scratch.path / ".env").exists()


def test_a_change_is_checked_in_the_mirror_and_put_back_leaving_the_user_tree_alone(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "user", {"src/main.rs": MOVED_VALUE_BIN})
    scratch = ScratchCrate(locate_crate(root), tmp_path / "mirror", tmp_path / "target")
    with scratch.locked():
        scratch.sync()
        assert [e.code for e in scratch.check(120).errors] == ["E0382"]
        with scratch.changed({"src/main.rs": FIXED_BIN.encode(), "src/new.rs": b"pub fn g() {}\n"}):
            assert (scratch.path / "src" / "main.rs").read_text() == FIXED_BIN
            assert scratch.check(120).errors == []
        assert (scratch.path / "src" / "main.rs").read_text() == MOVED_VALUE_BIN
        assert not (scratch.path / "src" / "new.rs").exists()
        # Put back within the same second, the restored file must still be rebuilt by cargo.
        assert [e.code for e in scratch.check(120).errors] == ["E0382"]
    assert (root / "src" / "main.rs").read_text() == MOVED_VALUE_BIN


def test_a_program_crate_is_rewritten_only_when_it_changes(tmp_path: Path) -> None:
    crate = write_program_crate(tmp_path / "case", FIXED_BIN, package="case_a", edition="2021", crate_type="bin")
    main = tmp_path / "case" / "src" / "main.rs"
    before = main.stat().st_mtime_ns
    write_program_crate(tmp_path / "case", FIXED_BIN, package="case_a", edition="2021", crate_type="bin")
    assert main.stat().st_mtime_ns == before
    write_program_crate(tmp_path / "case", "pub fn f() {}\n", package="case_a", edition="2021", crate_type="lib")
    assert not main.exists() and (tmp_path / "case" / "src" / "lib.rs").is_file()
    assert crate.manifest == tmp_path / "case" / "Cargo.toml"


def test_a_lone_file_gets_its_own_folder_and_leaves_nothing_behind(tmp_path: Path) -> None:
    with (
        lone_file(tmp_path, "main.rs", b"fn main() {}\n", edition="2021", crate_type="bin") as first,
        lone_file(tmp_path, "main.rs", b"fn main() {}\n", edition="2021", crate_type="bin") as second,
    ):
        assert first.root != second.root and (first.root / "main.rs").is_file()
    assert list(tmp_path.iterdir()) == []
