"""Checkpoints: safe loading, RNG round trip, run ids, newest valid checkpoint, stale temp folders, file modes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from texkit.checkpoint import (
    CheckpointError,
    RunFolderError,
    latest_checkpoint,
    load_checkpoint,
    load_state,
    newest_valid_checkpoint,
    read_run_id,
    remove_stale_temp,
    save_checkpoint,
    start_run,
)
from texkit.io import atomic_folder, atomic_write_text


class FakeGenerator:
    """Writes and reads a one-file adapter, as a generator plugin would."""

    def __init__(self) -> None:
        self.loaded: str | None = None

    def save_adapter(self, folder: Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "adapter.bin").write_bytes(b"lora")

    def load_adapter(self, folder: Path) -> None:
        self.loaded = (Path(folder) / "adapter.bin").read_text()


class Payload:
    """Unpickling this creates a file: a stand-in for arbitrary code in a checkpoint."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _state() -> dict:
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))], lr=1e-3)
    opt.param_groups[0]["params"][0].grad = torch.ones(3)
    opt.step()
    return {"optimizer": opt.state_dict(), "angles": {"paint_elevation": torch.tensor([-20.0])}}


def test_state_holds_only_tensors_and_plain_values_and_loads_with_weights_only(tmp_path):
    folder = save_checkpoint(tmp_path, 3, FakeGenerator(), _state(), run_id="r1")
    state = torch.load(folder / "state.pt", weights_only=True)  # would raise on any pickled object
    assert state["step"] == 3 and set(state["rng"]) == {"python", "numpy", "torch"}
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["run_id"] == "r1" and meta["step"] == 3


def test_pickled_payload_in_state_pt_is_refused_in_one_line(tmp_path):
    folder = save_checkpoint(tmp_path, 1, FakeGenerator(), _state(), run_id="r1")
    buf = io.BytesIO()
    torch.save({"step": 1, "rng": {}, "evil": Payload(str(tmp_path / "PWNED"))}, buf)
    (folder / "state.pt").write_bytes(buf.getvalue())
    gen = FakeGenerator()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(folder, gen)
    message = str(info.value)
    assert "\n" not in message and "refused" in message and "state.pt" in message
    assert not (tmp_path / "PWNED").exists(), "the payload ran"
    assert gen.loaded is None  # nothing was loaded into the generator either


def test_rng_states_round_trip(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    folder = save_checkpoint(tmp_path, 1, FakeGenerator(), _state(), run_id="r")
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    load_checkpoint(folder, FakeGenerator())
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_prunes_only_its_own_run_and_keeps_two(tmp_path):
    save_checkpoint(tmp_path, 8, FakeGenerator(), _state(), run_id="other")
    for step in (2, 4, 6):
        save_checkpoint(tmp_path, step, FakeGenerator(), _state(), run_id="mine")
    names = sorted(p.name for p in tmp_path.glob("step_*"))
    assert names == ["step_000004", "step_000006", "step_000008"]  # other run's step 8 untouched
    assert (tmp_path / "latest").read_text().strip() == "step_000006"


def test_newest_valid_falls_back_and_says_why(tmp_path):
    for step in (2, 4):
        save_checkpoint(tmp_path, step, FakeGenerator(), _state(), run_id="r")
    (tmp_path / "step_000004" / "state.pt").write_bytes(b"truncated")  # hash no longer matches
    ckpt, note = newest_valid_checkpoint(tmp_path, "r")
    assert ckpt is not None and ckpt.step == 2 and "step_000004" in note
    assert latest_checkpoint(tmp_path) is None
    (tmp_path / "latest").write_text("step_000099\n")  # names a folder that does not exist
    assert newest_valid_checkpoint(tmp_path, "r")[0].step == 2
    assert newest_valid_checkpoint(tmp_path, "someone-else")[0] is None


def test_stale_temp_folders_are_removed(tmp_path):
    (tmp_path / ".step_000004.abc123").mkdir()
    (tmp_path / ".step_000004.abc123" / "state.pt").write_bytes(b"half")
    save_checkpoint(tmp_path, 2, FakeGenerator(), _state(), run_id="r")
    assert not list(tmp_path.glob(".step_*"))
    (tmp_path / ".step_000009.x").mkdir()
    assert [p.name for p in remove_stale_temp(tmp_path)] == [".step_000009.x"]


def test_run_folder_is_claimed_once(tmp_path):
    run_id = start_run(tmp_path / "run")
    assert read_run_id(tmp_path / "run") == run_id
    (tmp_path / "run" / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(RunFolderError, match="--resume.*--overwrite"):
        start_run(tmp_path / "run")
    (tmp_path / "run" / "mine.txt").write_text("a user's file")
    new_id = start_run(tmp_path / "run", overwrite=True)
    assert new_id != run_id and not (tmp_path / "run" / "metrics.jsonl").exists()
    assert (tmp_path / "run" / "mine.txt").exists()  # only texkit's own files are removed


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_file_modes_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        folder = save_checkpoint(tmp_path / "ck", 1, FakeGenerator(), _state(), run_id="r")
        with atomic_folder(tmp_path / "gen") as tmp:
            (tmp / "t.txt").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((folder / "state.pt").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((folder / "meta.json").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((tmp_path / "gen").stat().st_mode) == 0o777 & ~umask


def test_atomic_folder_keeps_the_old_content_when_the_body_fails(tmp_path):
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "texture.png").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "gen") as tmp:
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("killed mid-way")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen"]
    assert [p.name for p in (tmp_path / "gen").iterdir()] == ["texture.png"]


def test_damaged_state_is_a_one_line_error(tmp_path):
    folder = save_checkpoint(tmp_path, 1, FakeGenerator(), _state(), run_id="r")
    (folder / "state.pt").write_bytes(b"PK\x03\x04 nothing")
    with pytest.raises(CheckpointError, match="damaged") as info:
        load_state(folder)
    assert "\n" not in str(info.value)


def test_a_damaged_old_checkpoint_is_pruned_like_any_other(tmp_path):
    for step in (2, 4):
        save_checkpoint(tmp_path, step, FakeGenerator(), _state(), run_id="r")
    (tmp_path / "step_000002" / "state.pt").write_bytes(b"damaged")  # still complete, hash no longer matches
    save_checkpoint(tmp_path, 6, FakeGenerator(), _state(), run_id="r")
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_000004", "step_000006"]


def test_a_damaged_state_names_what_torch_found(tmp_path):
    folder = save_checkpoint(tmp_path, 2, FakeGenerator(), _state(), run_id="r")
    data = (folder / "state.pt").read_bytes()
    (folder / "state.pt").write_bytes(data[: len(data) // 2])  # a truncated zip archive
    with pytest.raises(CheckpointError) as info:
        load_state(folder)
    message = str(info.value)
    assert "is damaged (" in message and "\n" not in message
    reason = message.split("is damaged (")[1].split("); resume")[0]
    assert " " in reason and not reason.endswith("Error"), reason  # torch's own words, not an exception's name


def test_a_checkpoint_folder_whose_parents_do_not_exist_yet_is_created(tmp_path):
    root = tmp_path / "new" / "run" / "checkpoints"
    final = save_checkpoint(root, 1, FakeGenerator(), _state(), run_id="r")
    assert final == root / "step_000001" and latest_checkpoint(root) == final


def test_saving_a_step_again_replaces_it_and_leaves_nothing_aside(tmp_path):
    root = tmp_path / "checkpoints"
    save_checkpoint(root, 3, FakeGenerator(), _state(), run_id="r")
    save_checkpoint(root, 3, FakeGenerator(), {"angles": {"paint_elevation": torch.tensor([5.0])}}, run_id="r")
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_000003"]
    assert float(load_state(root / "step_000003")["angles"]["paint_elevation"]) == 5.0


def test_a_file_not_written_with_the_checkpoint_is_named(tmp_path):
    from texkit.checkpoint import checkpoint_problem

    final = save_checkpoint(tmp_path / "checkpoints", 2, FakeGenerator(), _state(), run_id="r")
    assert checkpoint_problem(final) is None
    (final / "notes.txt").write_text("added later")
    assert checkpoint_problem(final) == "notes.txt was not written with the checkpoint"


def test_meta_and_latest_reach_the_disk_before_they_are_renamed_into_place(tmp_path, monkeypatch):
    """Durability: the files that make a checkpoint valid (meta.json) and current (latest) are fsynced."""
    synced = []
    real = os.fsync

    def recording(fd):
        with contextlib.suppress(OSError):
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    save_checkpoint(tmp_path / "checkpoints", 1, FakeGenerator(), _state(), run_id="r")
    if not synced:
        pytest.skip("/proc/self/fd is not readable here")
    names = [Path(p).name for p in synced]
    assert any("meta.json" in n for n in names), names
    assert any("latest" in n for n in names), names


def test_a_state_without_a_step_is_no_training_state(tmp_path):
    final = save_checkpoint(tmp_path / "checkpoints", 1, FakeGenerator(), _state(), run_id="r")
    for other in ({"angles": {}}, [1, 2]):
        torch.save(other, final / "state.pt")
        with pytest.raises(CheckpointError, match="holds no training state"):
            load_checkpoint(final, FakeGenerator())


def test_a_latest_pointer_that_names_no_step_folder_is_ignored(tmp_path):
    import shutil

    root = tmp_path / "checkpoints"
    save_checkpoint(root, 1, FakeGenerator(), _state(), run_id="r")
    newest = save_checkpoint(root, 2, FakeGenerator(), _state(), run_id="r")
    shutil.copytree(newest, root / "copy")
    (root / "latest").write_text("copy\n")
    assert latest_checkpoint(root) != root / "copy"


def test_another_runs_older_checkpoint_is_never_pruned(tmp_path):
    save_checkpoint(tmp_path, 1, FakeGenerator(), _state(), run_id="other")
    for step in (2, 4, 6):
        save_checkpoint(tmp_path, step, FakeGenerator(), _state(), run_id="mine")
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_000001", "step_000004", "step_000006"]


def test_keep_one_keeps_only_the_newest_and_keep_zero_keeps_all(tmp_path):
    for step in (2, 4, 6):
        save_checkpoint(tmp_path / "one", step, FakeGenerator(), _state(), keep=1, run_id="r")
        save_checkpoint(tmp_path / "all", step, FakeGenerator(), _state(), keep=0, run_id="r")
    assert sorted(p.name for p in (tmp_path / "one").glob("step_*")) == ["step_000006"]
    assert sorted(p.name for p in (tmp_path / "all").glob("step_*")) == ["step_000002", "step_000004", "step_000006"]


def test_meta_json_is_format_3_with_every_files_sha256(tmp_path):
    import hashlib

    final = save_checkpoint(tmp_path, 2, FakeGenerator(), _state(), run_id="r")
    meta = json.loads((final / "meta.json").read_text())
    assert meta["format"] == 3 and meta["step"] == 2 and meta["run_id"] == "r"
    assert meta["files"] == {name: hashlib.sha256((final / name).read_bytes()).hexdigest() for name in ("adapter/adapter.bin", "state.pt")}
    assert meta["state_sha256"] == meta["files"]["state.pt"]


def test_a_checkpoint_record_is_immutable_and_hashable(tmp_path):
    import dataclasses

    final = save_checkpoint(tmp_path, 2, FakeGenerator(), _state(), run_id="r")
    ckpt = newest_valid_checkpoint(tmp_path, "r")[0]
    assert ckpt.folder == final and ckpt.step == 2 and len({ckpt, newest_valid_checkpoint(tmp_path, "r")[0]}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        ckpt.step = 3


def test_a_folder_holding_a_run_is_refused_unless_overwrite_is_asked(tmp_path):
    from texkit.checkpoint import check_run_folder

    start_run(tmp_path)
    with pytest.raises(RunFolderError):
        check_run_folder(tmp_path)
    check_run_folder(tmp_path, overwrite=True)


class BrokenGenerator(FakeGenerator):
    def save_adapter(self, folder: Path) -> None:
        super().save_adapter(folder)
        raise OSError("disk full")


def test_a_failed_save_leaves_no_temp_folder_and_raises_its_own_error(tmp_path):
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 2, BrokenGenerator(), _state(), run_id="r")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def undeletable(monkeypatch):
    """``undeletable(prefix)``: folders whose name starts with ``prefix`` cannot be removed (a busy NFS
    file, a file held open on Windows): os.rmdir raises for them."""
    real = os.rmdir

    def install(prefix: str):
        def rmdir(path, *args, **kwargs):
            if Path(path).name.startswith(prefix):
                raise OSError(16, "Device or resource busy", str(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, "rmdir", rmdir)

    return install


def test_a_temp_folder_that_cannot_be_removed_does_not_hide_the_saves_error(tmp_path, undeletable):
    undeletable(".step_")
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 2, BrokenGenerator(), _state(), run_id="r")


def test_stale_temp_folders_that_cannot_be_removed_do_not_stop_a_save(tmp_path, undeletable):
    (tmp_path / ".step_000004.abc123").mkdir()
    undeletable(".step_000004.abc")
    assert save_checkpoint(tmp_path, 2, FakeGenerator(), _state(), run_id="r").name == "step_000002"
    assert [p.name for p in remove_stale_temp(tmp_path)] == [".step_000004.abc123"]


def test_a_stale_temp_file_removed_meanwhile_is_no_error(tmp_path, monkeypatch):
    """Two processes cleaning the same folder: a ``.step_*`` entry listed but already gone is skipped."""
    gone = tmp_path / ".step_000004.gone"
    real_glob = Path.glob
    monkeypatch.setattr(Path, "glob", lambda self, pattern: [*real_glob(self, pattern), gone] if pattern == ".step_*" else real_glob(self, pattern))
    assert remove_stale_temp(tmp_path) == [gone]


def test_an_old_checkpoint_that_cannot_be_removed_does_not_stop_the_save(tmp_path, undeletable):
    save_checkpoint(tmp_path, 3, FakeGenerator(), _state(), run_id="r")
    undeletable(".step_000003.old")
    assert save_checkpoint(tmp_path, 3, FakeGenerator(), _state(), run_id="r").name == "step_000003"  # replacing step 3
    undeletable("step_000003")
    save_checkpoint(tmp_path, 4, FakeGenerator(), _state(), keep=1, run_id="r")  # pruning step 3
    assert newest_valid_checkpoint(tmp_path, "r")[0].step == 4


@pytest.mark.parametrize(
    "meta",
    [None, "a directory", "not json", '{"run_id": "r"}', '{"step": null, "run_id": "r"}', '{"step": "nine", "run_id": "r"}', "[9]"],
    ids=["missing", "directory", "not-json", "no-step", "null-step", "text-step", "a-list"],
)
def test_an_unreadable_meta_json_is_a_skipped_checkpoint_not_an_error(tmp_path, meta):
    from texkit.checkpoint import checkpoint_problem, resume_candidates

    good = save_checkpoint(tmp_path, 2, FakeGenerator(), _state(), run_id="r")
    bad = save_checkpoint(tmp_path, 9, FakeGenerator(), _state(), run_id="r")
    (bad / "meta.json").unlink()
    if meta == "a directory":
        (bad / "meta.json").mkdir()
    elif meta is not None:
        (bad / "meta.json").write_text(meta)
    assert checkpoint_problem(bad) == "meta.json is missing or unreadable"
    assert [c.folder for c in resume_candidates(tmp_path, "r")] == [good]
    assert latest_checkpoint(tmp_path) is None  # `latest` names step 9
    ckpt, note = newest_valid_checkpoint(tmp_path, "r")
    assert ckpt.folder == good


@pytest.mark.parametrize("record", ["not json", '{"id": "x"}', '["x"]', None], ids=["not-json", "no-run-id", "a-list", "missing"])
def test_an_unreadable_run_record_names_no_run(tmp_path, record):
    if record is not None:
        (tmp_path / "run.json").write_text(record)
    assert read_run_id(tmp_path) is None


def test_a_format_2_checkpoint_verifies_its_state_pt_only(tmp_path):
    """Format 2 (older texkit) recorded only state.pt's SHA-256: it still verifies, and a changed or missing
    state.pt is named."""
    from texkit.checkpoint import checkpoint_problem

    final = save_checkpoint(tmp_path, 2, FakeGenerator(), _state(), run_id="r")
    meta = json.loads((final / "meta.json").read_text())
    (final / "meta.json").write_text(json.dumps({"format": 2, "step": 2, "run_id": "r", "state_sha256": meta["state_sha256"]}))
    (final / "notes.txt").write_text("format 2 lists no files: an extra one is not checked")
    assert checkpoint_problem(final) is None
    assert newest_valid_checkpoint(tmp_path, "r")[0].folder == final
    (final / "state.pt").write_bytes(b"changed")
    assert checkpoint_problem(final) == "state.pt does not match its checksum"
    (final / "state.pt").unlink()
    assert checkpoint_problem(final) == "state.pt is missing"


def test_a_resume_tries_latest_first_then_the_newest(tmp_path):
    from texkit.checkpoint import resume_candidates

    for step in (2, 4, 6):
        save_checkpoint(tmp_path, step, FakeGenerator(), _state(), keep=0, run_id="r")
    save_checkpoint(tmp_path, 8, FakeGenerator(), _state(), keep=0, run_id="other")
    assert [c.step for c in resume_candidates(tmp_path, "r")] == [6, 4, 2]
    (tmp_path / "latest").write_text("step_000004\n")
    assert [c.step for c in resume_candidates(tmp_path, "r")] == [4, 6, 2]
    assert newest_valid_checkpoint(tmp_path, "r") == (resume_candidates(tmp_path, "r")[0], "")
    (tmp_path / "latest").unlink()  # no pointer: the newest, and nothing to report
    assert [c.step for c in resume_candidates(tmp_path, "r")] == [6, 4, 2]
    ckpt, note = newest_valid_checkpoint(tmp_path, "r")
    assert ckpt.step == 6 and note == ""


@pytest.mark.parametrize("pointer", ["step_000002/../step_000004", "copy", "", "step_000009"])
def test_a_latest_pointer_naming_no_checkpoint_folder_is_reported_and_ignored(tmp_path, pointer):
    from texkit.checkpoint import resume_candidates

    for step in (2, 4):
        save_checkpoint(tmp_path, step, FakeGenerator(), _state(), run_id="r")
    (tmp_path / "latest").write_text(pointer + "\n")
    assert latest_checkpoint(tmp_path) is None
    assert [c.step for c in resume_candidates(tmp_path, "r")] == [4, 2]
    ckpt, note = newest_valid_checkpoint(tmp_path, "r")
    named = pointer if pointer.startswith("step_") and "/" not in pointer else "?"
    assert ckpt.step == 4 and note == f"checkpoints/latest names '{named}', which is missing"


def test_a_state_without_rng_states_loads_and_leaves_the_generators_alone(tmp_path):
    final = save_checkpoint(tmp_path, 2, FakeGenerator(), _state(), run_id="r")
    torch.save({"step": 2, "angles": {}}, final / "state.pt")
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    generator = FakeGenerator()
    assert load_checkpoint(final, generator)["step"] == 2 and generator.loaded == "lora"
    assert torch.equal(torch.rand(3), expected)


def test_a_long_load_error_is_cut_to_160_characters_in_its_one_line_message(tmp_path, monkeypatch):
    final = save_checkpoint(tmp_path, 2, FakeGenerator(), _state(), run_id="r")

    def fail(*args, **kwargs):
        raise RuntimeError("x" * 300 + ". Second sentence")

    monkeypatch.setattr(torch, "load", fail)
    with pytest.raises(CheckpointError) as err:
        load_state(final)
    assert f"is damaged ({'x' * 160}); resume from an earlier checkpoint" in str(err.value)


def test_a_load_failure_is_described_by_its_first_sentence():
    from texkit.checkpoint import describe_load_failure
    from texkit.errors import WeightsError

    assert describe_load_failure(CheckpointError("x.pt is damaged (eof); resume from an earlier one")) == "x.pt is damaged (eof)"
    assert describe_load_failure(WeightsError("no LoRA adapter at a; pass the folder")) == "no LoRA adapter at a"
    assert describe_load_failure(RuntimeError("Error  while\n deserializing. More detail here")) == "RuntimeError: Error while deserializing"
    assert describe_load_failure(RuntimeError("y" * 200)) == "RuntimeError: " + "y" * 160
    assert describe_load_failure(EOFError()) == "EOFError"
