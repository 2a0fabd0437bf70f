"""benchmarks/mutation.py (make mutation): which mutants it makes, the sample, changed lines, the record."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("cosmic_ray")

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("texkit_mutation_tool", ROOT / "benchmarks" / "mutation.py")
mutation = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = mutation  # its dataclasses look their module up
_spec.loader.exec_module(mutation)

SOURCE = '''from __future__ import annotations


def scale(x: int | None, k: float = 2.0) -> int | float:
    y: int | None = None
    return x * k + 1


class Settings:
    size: int = 16

    def bigger(self, other: int | str) -> bool:
        return self.size > other
'''


@pytest.fixture
def module(tmp_path, monkeypatch):
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    path = tmp_path / "mod.py"
    path.write_text(SOURCE)
    return path


def _lines(mutants):
    return sorted({m.spec.start_pos[0] for m in mutants})


def test_no_mutant_inside_annotations_and_numbers_only_plus_one(module):
    ops = mutation.operator_names(["core/ReplaceBinaryOperator_BitOr_BitAnd", "core/NumberReplacer", "core/ReplaceBinaryOperator_Mul_Div"])
    found = mutation.mutants_of(module, ops)
    assert not [m for m in found if m.spec.operator_name.endswith("BitOr_BitAnd")]  # every | is in an annotation
    numbers = [m for m in found if m.spec.operator_name == "core/NumberReplacer"]
    assert _lines(numbers) == [4, 6, 10] and len(numbers) == 3  # 2.0, 1 and 16, each once (n + 1)
    assert [m.spec.start_pos[0] for m in found if m.spec.operator_name.endswith("Mul_Div")] == [6]


def test_scope_keeps_the_definitions_named(module):
    ops = mutation.operator_names(mutation.load_settings().operators)
    everything = mutation.mutants_of(module, ops)
    only_class = mutation.mutants_of(module, ops, scope=["Settings"])
    only_method = mutation.mutants_of(module, ops, scope=["Settings.bigger"])
    assert _lines(only_class) == [10, 13] and _lines(only_method) == [13]
    assert set(_lines(everything)) >= {4, 6, 10, 13}
    assert mutation.mutants_of(module, ops, lines={6}) and _lines(mutation.mutants_of(module, ops, lines={6})) == [6]
    assert mutation.in_scope("Trainer.train_step", ["Trainer"]) and not mutation.in_scope("TrainerX.step", ["Trainer"])


def test_the_sample_is_stable_and_about_one_in_n(module):
    found = mutation.mutants_of(module, mutation.operator_names(mutation.load_settings().operators))
    first = [m.spec.occurrence for m in found if mutation.sampled(m, 3)]
    assert first == [m.spec.occurrence for m in found if mutation.sampled(m, 3)]
    assert all(mutation.sampled(m, 1) for m in found) and 0 < len(first) < len(found)


def test_changed_lines_from_a_diff(monkeypatch):
    diff = "@@ -3 +3,2 @@\n-a\n+b\n+c\n@@ -10,0 +12 @@\n+d\n@@ -20,2 +21,0 @@\n-e\n"
    monkeypatch.setattr(mutation, "_git", lambda *args: diff)
    assert mutation.changed_lines("HEAD~1", "x.py") == {3, 4, 12}


def test_equivalents_are_matched_by_module_and_lines_and_leave_the_score():
    settings = mutation.Settings([], [], [mutation.Equivalent("m.py", "a = b", "a = c", "same")], 90.0, 4.0, 30.0)
    diff = "--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-a = b\n+a = c\n"
    assert mutation.describe(diff) == ("a = b", "a = c")
    assert mutation._equivalent(settings, "m.py", diff) == "same" and mutation._equivalent(settings, "n.py", diff) == ""
    part = {"mutants": 10, "killed": 8, "timeout": 0, "survived": 1, "no_tests": 0, "equivalent": 1, "mutant_seconds": 1.0, "modules": {"m.py": {}}, "survivors": [{}], "equivalent_mutants": [{}]}
    other = {**part, "modules": {"n.py": {}}, "killed": 9, "survived": 0}
    merged = mutation.merge([part, other])
    assert merged["mutants"] == 20 and merged["score"] == pytest.approx(100 * 17 / 18, abs=0.01) and set(merged["modules"]) == {"m.py", "n.py"}
    json.dumps(merged)


def test_the_configuration_names_existing_modules_tests_and_operators():
    settings = mutation.load_settings()
    assert len(mutation.operator_names(settings.operators)) == len(settings.operators)
    for unit in settings.units:
        assert (ROOT / unit.module).is_file(), unit.module
        for test in unit.tests:
            assert (ROOT / test.split("::")[0]).exists(), test
    for named in settings.named:
        assert (ROOT / named["module"]).read_text().count(named["original"]) == 1, named["name"]


def test_pytest_run_that_collects_nothing_is_never_a_kill(tmp_path, monkeypatch):
    """pytest's exit 5 (no test collected) or 4 (usage error) says nothing about a mutant: the forked
    runner reports them apart from a failure, so a mistyped test path cannot count as a kill."""
    empty = tmp_path / "test_nothing.py"
    empty.write_text("def helper():\n    return 1\n")
    failing = tmp_path / "test_fails.py"
    failing.write_text("def test_fails():\n    assert 1 == 2\n")
    passing = tmp_path / "test_passes.py"
    passing.write_text("def test_passes():\n    assert 1 == 1\n")
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "log.txt"
    assert mutation.run_forked([str(empty)], 120.0, log)[0] == "no_tests_ran"
    assert mutation.run_forked([str(tmp_path / "test_missing.py")], 120.0, log)[0] == "no_tests_ran"
    assert mutation.run_forked([str(failing)], 120.0, log)[0] == "failed"
    assert mutation.run_forked([str(passing)], 120.0, log)[0] == "passed"
    broken = tmp_path / "test_broken.py"  # a mutant that breaks an import: its node ids are "not found" (exit 4)
    broken.write_text("x = 1 * 'a' / 2\n\ndef test_one():\n    pass\n")
    assert mutation.run_forked([f"{broken}::test_one"], 120.0, log)[0] == "failed", log.read_text()[-800:]
    assert mutation.run_forked([f"{passing}::test_missing"], 120.0, log)[0] == "no_tests_ran"
    # a mutant that is not valid Python in a module the test file imports: pytest's summary names the file
    # without " - <reason>" (a collection error of the file's import), still a kill
    (tmp_path / "mutated_helper.py").write_text("options = {}\nmerged = {*options, 'key': 1}\n")
    importing = tmp_path / "test_imports_mutant.py"
    importing.write_text("import mutated_helper\n\n\ndef test_one():\n    assert mutated_helper.merged\n")
    assert mutation.run_forked([f"{importing}::test_one"], 120.0, log)[0] == "failed", log.read_text()[-800:]


def test_merge_moves_survivors_listed_as_equivalent_since_into_the_equivalents():
    settings = mutation.Settings([], [], [mutation.Equivalent("m.py", "x = a * 1", "x = a / 1", "1 is 1")], 90.0, 4.0, 30.0)
    survivor = {"module": "m.py", "line": 3, "operator": "core/ReplaceBinaryOperator_Mul_Div", "original": "x = a * 1", "mutant": "x = a / 1", "status": "survived"}
    other = {**survivor, "original": "y = b", "mutant": "y = c"}
    part = {
        "mutants": 10, "killed": 8, "timeout": 0, "survived": 2, "no_tests": 0, "equivalent": 0, "score": 80.0,
        "modules": {"m.py": {"mutants": 10, "killed": 8, "timeout": 0, "survived": 2, "no_tests": 0, "equivalent": 0, "score": 80.0}},
        "survivors": [survivor, other], "equivalent_mutants": [],
    }
    mutation.reclassify_equivalents(part, settings)
    assert part["survivors"] == [other] and part["equivalent_mutants"][0]["reason"] == "1 is 1"
    assert part["modules"]["m.py"]["score"] == pytest.approx(100 * 8 / 9, abs=0.01)
    assert mutation.merge([{**part, "commit": "c", "mutant_seconds": 1.0}])["score"] == pytest.approx(100 * 8 / 9, abs=0.01)


def test_merge_names_the_modules_whose_source_or_tests_changed_since_they_were_measured(tmp_path, monkeypatch):
    import subprocess

    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    for name in ("m.py", "n.py", "tests/test_m.py", "tests/test_n.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    git("add", "-A")
    git("commit", "-qm", "one")
    first = git("rev-parse", "HEAD")
    (tmp_path / "tests" / "test_m.py").write_text("x = 2\n")  # m's test changes; n and its test do not
    (tmp_path / "other.py").write_text("y = 1\n")
    git("add", "-A")
    git("commit", "-qm", "two")
    second = git("rev-parse", "HEAD")
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    settings = mutation.Settings([mutation.Unit("m.py", ["tests/test_m.py"]), mutation.Unit("n.py", ["tests/test_n.py"])], [], [], 90.0, 4.0, 30.0)
    modules = {"m.py": {"commit": first}, "n.py": {"commit": first}}
    assert mutation.stale_modules(modules, settings) == {"m.py": ["tests/test_m.py"]}
    assert mutation.stale_modules({"m.py": {"commit": second}, "n.py": {"commit": first}}, settings) == {}
    assert mutation.stale_modules({"m.py": {"commit": "0" * 40}}, settings) == {"m.py": [f"commit {'0' * 40} not in this repository"]}
    # tests listed by node id: their file's changes count too
    by_node = mutation.Settings([mutation.Unit("m.py", ["tests/test_m.py::test_one", "tests/test_m.py::test_two"])], [], [], 90.0, 4.0, 30.0)
    assert mutation.stale_modules({"m.py": {"commit": first}}, by_node) == {"m.py": ["tests/test_m.py"]}
