"""Mutation testing of the method's core: Cosmic Ray's mutants, each run against the tests that execute it.

``make mutation`` runs every module of ``benchmarks/mutation.toml`` and writes the score and the
surviving mutants to ``benchmarks/results/mutation.json``; ``make mutation-fast`` (in ``.ci/run``)
mutates only the lines changed against a base commit, within a time budget.

The mutants are Cosmic Ray's (``cosmic_ray.operators``: operator replacements, numbers +-1,
``True``/``False``, ``and``/``or``, an added ``not``, deleted unary ``-``/``not``, loops that never run,
exception types swapped, decorators removed; the subset used is ``operators`` in the TOML), applied
in place with ``cosmic_ray.mutating.use_mutation`` and recorded in a Cosmic Ray session database per
module (``.mutation/<module>.sqlite``; ``cr-report`` reads it). Mutations inside annotations are not
made: with ``from __future__ import annotations`` they are never evaluated.

What this script adds to Cosmic Ray is the speed that makes a full run fit on a laptop:

* per-module test selection: each module lists the test files that exercise it;
* per-mutant test selection: an unmutated run of those tests under ``coverage`` records which test
  executes which line, and a mutant runs only the tests that execute its statement (statements
  run only at import, such as a pydantic ``Field``'s bounds, run all of the module's tests); a
  mutant no test executes survives without a run;
* a forked runner: one process imports torch, diffusers, pytest ... once, and each mutant's tests
  run in a child forked from it (``pytest.main`` on the mutated files, read from disk afresh), so a
  mutant costs its tests, not an interpreter start-up;
* ``-x`` and the fastest test files first.

A mutant whose tests fail or time out is killed. The score is killed / (mutants - equivalent);
equivalent mutants (no behaviour can tell them apart) are listed in the TOML with a reason.
While a mutant is on disk its original is kept in ``.mutation/backup``; a run killed hard puts it
back at its next start.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "benchmarks" / "mutation.toml"
RESULTS = ROOT / "benchmarks" / "results" / "mutation.json"
WORK = ROOT / ".mutation"
BACKUP = WORK / "backup"


# -- configuration ------------------------------------------------------------------------------


@dataclass
class Unit:
    """One mutated module, the test files that exercise it and the definitions mutated (all when empty)."""

    module: str
    tests: list[str]
    scope: list[str] = field(default_factory=list)


@dataclass
class Equivalent:
    """A mutant that no behaviour can tell from the original, and why."""

    module: str
    line: str
    mutant: str
    reason: str


@dataclass
class Settings:
    """``benchmarks/mutation.toml``."""

    units: list[Unit]
    operators: list[str]
    equivalents: list[Equivalent]
    fail_under: float
    timeout_factor: float
    timeout_constant: float
    named: list[dict[str, Any]] = field(default_factory=list)


def load_settings(path: Path = CONFIG) -> Settings:
    """Read the TOML configuration."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    units = [Unit(u["module"], list(u["tests"]), list(u.get("scope", []))) for u in data["module"]]
    equivalents = [Equivalent(e["module"], e["line"], e["mutant"], e["reason"]) for e in data.get("equivalent", [])]
    run = data.get("run", {})
    return Settings(
        units,
        list(data["operators"]["include"]),
        equivalents,
        float(run.get("fail_under", 90.0)),
        float(run.get("timeout_factor", 4.0)),
        float(run.get("timeout_constant", 30.0)),
        list(data.get("named", [])),
    )


# -- mutants ------------------------------------------------------------------------------------


def _in_annotation(node: Any) -> bool:
    """Whether a parso node lies inside a parameter, return or variable annotation."""
    child, parent = node, node.parent
    while parent is not None:
        if parent.type == "tfpdef" and len(parent.children) > 2 and parent.children[2] is child:  # name: annotation
            return True
        if parent.type == "funcdef" and getattr(parent, "annotation", None) is child:
            return True
        if parent.type == "annassign" and len(parent.children) > 1 and parent.children[1] is child:
            return True
        child, parent = parent, parent.parent
    return False


def _qualname(node: Any) -> str:
    """Dotted name of the functions and classes around a parso node (``""`` at module level)."""
    names = []
    current = node.parent
    while current is not None:
        if current.type in ("funcdef", "classdef"):
            names.append(current.name.value)
        current = current.parent
    return ".".join(reversed(names))


def in_scope(qualname: str, scope: list[str]) -> bool:
    """Whether a definition is mutated: every one for an empty scope, else those named or inside one named."""
    return not scope or any(qualname == s or qualname.startswith(s + ".") for s in scope)


def _statement_lines(node: Any) -> tuple[int, int]:
    """First and last line of the smallest statement (or definition) holding a parso node."""
    kinds = {"simple_stmt", "if_stmt", "for_stmt", "while_stmt", "with_stmt", "try_stmt", "funcdef", "classdef", "decorated"}
    current = node
    while current is not None and current.type not in kinds:
        current = current.parent
    current = current or node
    return current.start_pos[0], current.end_pos[0]


@dataclass
class Mutant:
    """One Cosmic Ray mutation of a module, with the lines of the statement it sits in."""

    spec: Any  # cosmic_ray.work_item.MutationSpec
    statement: tuple[int, int]


def operator_names(patterns: list[str]) -> list[str]:
    """Cosmic Ray's core operators whose names match one of ``patterns`` (full regex match)."""
    import cosmic_ray.plugins

    names = sorted(cosmic_ray.plugins.operator_names())
    chosen = [n for n in names if any(re.fullmatch(p, n) for p in patterns)]
    if not chosen:
        raise SystemExit(f"no Cosmic Ray operator matches {patterns}")
    return chosen


def mutants_of(module: Path, operators: list[str], lines: set[int] | None = None, scope: list[str] | None = None) -> list[Mutant]:
    """Every mutation of ``module`` by ``operators`` (only on ``lines`` and in ``scope`` when given), outside annotations.

    The occurrence numbers are Cosmic Ray's (counted over all positions of the operator), so
    ``cosmic_ray.mutating.use_mutation`` applies exactly the mutation listed. ``NumberReplacer``
    offers n + 1 and n - 1 for each number; only n + 1 is made (half the runs, the same slips found).
    """
    import cosmic_ray.plugins
    from cosmic_ray.ast import ast_nodes, get_ast_from_path
    from cosmic_ray.work_item import MutationSpec

    tree = get_ast_from_path(module)
    out = []
    for name in operators:
        operator = cosmic_ray.plugins.get_operator(name)()
        positions = ((node, start, end) for node in ast_nodes(tree) for start, end in operator.mutation_positions(node))
        for occurrence, (node, start, end) in enumerate(positions):
            if _in_annotation(node) or (lines is not None and start[0] not in lines) or not in_scope(_qualname(node), scope or []):
                continue
            if name == "core/NumberReplacer" and occurrence % 2:
                continue
            spec = MutationSpec(module_path=str(module), operator_name=name, occurrence=occurrence, start_pos=start, end_pos=end)
            out.append(Mutant(spec, _statement_lines(node)))
    out.sort(key=lambda m: (m.spec.start_pos, m.spec.operator_name, m.spec.occurrence))
    return out


def sampled(mutant: Mutant, every: int) -> bool:
    """Whether a mutant is in the 1-in-``every`` sample: a hash of its module, operator and occurrence,
    so the same mutants are drawn on every machine and run."""
    import hashlib

    key = f"{Path(mutant.spec.module_path).relative_to(ROOT)}:{mutant.spec.operator_name}:{mutant.spec.occurrence}"
    return every <= 1 or int(hashlib.sha256(key.encode()).hexdigest(), 16) % every == 0


def describe(diff: str) -> tuple[str, str]:
    """The original and the mutated line of a unified diff (stripped)."""
    old = [line[1:].strip() for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    new = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return " ".join(old), " ".join(new)


# -- backups ------------------------------------------------------------------------------------


def restore_backups() -> list[str]:
    """Put back originals left by a run that was killed while a mutant was on disk."""
    restored = []
    if BACKUP.exists():
        for saved in BACKUP.rglob("*.py"):
            target = ROOT / saved.relative_to(BACKUP)
            target.write_bytes(saved.read_bytes())
            saved.unlink()
            restored.append(str(target.relative_to(ROOT)))
    return restored


@contextlib.contextmanager
def applied(mutant: Mutant) -> Iterator[tuple[str, str | None]]:
    """Apply one mutant on disk (original kept in ``.mutation/backup`` meanwhile)."""
    import cosmic_ray.plugins
    from cosmic_ray.mutating import use_mutation

    path = Path(mutant.spec.module_path)
    saved = BACKUP / path.relative_to(ROOT)
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_bytes(path.read_bytes())
    try:
        operator = cosmic_ray.plugins.get_operator(mutant.spec.operator_name)()
        with use_mutation(path, operator, mutant.spec.occurrence) as codes:
            yield codes
    finally:
        saved.unlink(missing_ok=True)


# -- the forked runner ---------------------------------------------------------------------------


def _third_party_modules(tests: list[str]) -> list[str]:
    """Modules from outside the repository that collecting ``tests`` imports (found in a subprocess)."""
    probe = (
        "import sys, json, pytest\n"
        f"pytest.main({tests!r} + ['--collect-only', '-q', '-p', 'no:cacheprovider'])\n"
        f"root = {str(ROOT)!r}\n"
        "names = sorted(n for n, m in list(sys.modules.items()) if n != '__main__' and not "
        "(getattr(m, '__file__', None) or root).startswith(root))\n"
        "sys.stdout.write('\\nMODULES ' + json.dumps(names) + '\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, env=_child_env())
    for line in proc.stdout.splitlines():
        if line.startswith("MODULES "):
            return json.loads(line[len("MODULES ") :])
    raise SystemExit(f"could not collect {tests}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
    return env


def preload(tests: list[str]) -> float:
    """Import, once in this process, every third-party module the tests need; returns seconds."""
    start = time.perf_counter()
    os.environ.update(_child_env())
    sys.dont_write_bytecode = True
    import importlib

    for name in [*_third_party_modules(tests), "hypothesis", "hypothesis.strategies"]:
        if name.startswith(("texkit", "tests", "conftest", "benchmarks")):
            continue
        with contextlib.suppress(BaseException):
            importlib.import_module(name)
    # byte-code of the unmutated sources, so a child compiles only the mutated module
    import compileall

    for folder in [ROOT / "texkit", ROOT / "tests", *ROOT.glob("plugins/*/src"), *ROOT.glob("plugins/*/tests")]:
        compileall.compile_dir(folder, quiet=2, workers=1)
    import torch

    torch.set_num_threads(1)
    import gc

    gc.collect()
    gc.freeze()  # the preloaded objects: never scanned again by a child's garbage collections
    return time.perf_counter() - start


class _Recorder:
    """pytest plugin of the coverage run: switches coverage's context to each test, records durations."""

    def __init__(self, cov: Any) -> None:
        self.cov = cov
        self.durations: dict[str, float] = {}
        self.failed: list[str] = []

    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> None:
        self.cov.switch_context(item.nodeid)

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        if report.failed:
            self.failed.append(report.nodeid)


def _pytest_args(tests: list[str]) -> list[str]:
    # plain asserts: rewriting them would compile every test module again in each child
    return [*tests, "-x", "-q", "--assert=plain", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--no-header", "--benchmark-disable"]


def run_forked(tests: list[str], timeout: float, log: Path, coverage_of: list[str] | None = None) -> tuple[str, float]:
    """Run pytest on ``tests`` in a child forked from this process.

    Returns:
        ``("passed" | "failed" | "no_tests_ran" | "timeout" | "crashed", seconds)`` (``no_tests_ran``:
        pytest's exit 4 or 5). With ``coverage_of`` the child
        also writes ``<log>.json``: ``{"lines": {file: {line: [node ids]}}, "durations": {...}}``.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        try:
            os.setpgid(0, 0)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            # also the Python streams (a parent whose sys.stdout is not fd 1, e.g. under pytest's capture)
            sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
            import pytest

            if coverage_of is None:
                code = int(pytest.main(_pytest_args(tests)))
            else:
                import coverage

                cov = coverage.Coverage(data_file=None, include=coverage_of, config_file=False)
                recorder = _Recorder(cov)
                cov.start()
                code = int(pytest.main(_pytest_args(tests), plugins=[recorder]))
                cov.stop()
                data = cov.get_data()
                lines = {f: {str(k): sorted(set(v) - {""}) for k, v in data.contexts_by_lineno(f).items()} for f in data.measured_files()}
                Path(f"{log}.json").write_text(json.dumps({"lines": lines, "durations": recorder.durations, "failed": recorder.failed}))
        except BaseException:  # noqa: BLE001 - report anything, then exit the child
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    deadline = start + timeout
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                seconds = time.perf_counter() - start
                if os.WIFEXITED(status):
                    return _outcome(os.WEXITSTATUS(status), log), seconds
                return "crashed", seconds
            if time.perf_counter() > deadline:
                _kill(pid)
                return "timeout", time.perf_counter() - start
            time.sleep(0.02)
    except BaseException:  # Ctrl-C: take the child (and what it started) down too
        _kill(pid)
        raise


def _outcome(code: int, log: Path) -> str:
    """A pytest exit code as ``passed``, ``failed`` or ``no_tests_ran``.

    0 all passed; 1 a test failed; 2 interrupted (a collection error); 3 internal error. 5 (no test
    collected) says nothing about the mutant, nor does 4 (usage error: a wrong path or node id),
    except where a test file did not import: pytest then reports its node ids as not found (exit 4)
    after an ``ERROR <file>.py - ...`` line (or a bare ``ERROR <file>.py``: a SyntaxError in a module the
    file imports), a mutant that breaks the import, which is a kill.
    """
    if code == 0:
        return "passed"
    if code == 5:
        return "no_tests_ran"
    if code == 4:
        text = log.read_text(errors="replace") if log.exists() else ""
        return "failed" if re.search(r"^ERROR \S+\.py(?: - |\s*$)", text, re.M) else "no_tests_ran"
    return "failed"


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, ChildProcessError):
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def first_failure(log: Path) -> str:
    """The node id of the first failed test in a pytest log ('' when none is named)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    match = re.search(r"^(?:FAILED|ERROR) (\S+)", text, re.M)
    return match.group(1) if match else ""


# -- one module ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened to one mutant."""

    mutant: Mutant
    status: str  # killed | timeout | survived | no_tests
    seconds: float
    diff: str
    killed_by: str = ""
    equivalent: str = ""


def _order(tests: list[str], durations: dict[str, float]) -> list[str]:
    """Node ids, the quickest first (with ``-x`` a mutant most tests catch costs the quickest of them)."""
    return sorted(tests, key=lambda n: (durations.get(n, 0.0), n))


def _equivalent(settings: Settings, module: str, diff: str) -> str:
    old, new = describe(diff)
    for e in settings.equivalents:
        if e.module == module and e.line == old and e.mutant == new:
            return e.reason
    return ""


_BASELINES: dict[tuple[str, ...], tuple[dict[str, Any], float]] = {}


def baseline(unit: Unit, settings: Settings, log: Path, timeout: float = 3600.0) -> tuple[dict[str, Any], float] | None:
    """The unmutated run of a module's tests under coverage: which test executes which line (of every
    module tested by the same tests, so modules sharing a test list share one run) and each test's duration.

    Returns None when it runs past ``timeout`` (a run's time budget ending during it)."""
    key = tuple(unit.tests)
    if key not in _BASELINES:
        modules = [str(ROOT / u.module) for u in settings.units if tuple(u.tests) == key]
        status, seconds = run_forked(unit.tests, timeout, log, coverage_of=modules)
        if status == "timeout" and timeout < 3600.0:
            return None
        if status != "passed":
            raise SystemExit(f"{unit.module}: the unmutated tests do not pass ({status}); see {log}")
        _BASELINES[key] = (json.loads(Path(f"{log}.json").read_text()), seconds)
    return _BASELINES[key]


def run_module(unit: Unit, settings: Settings, mutants: list[Mutant], deadline: float, say: Any) -> tuple[list[Outcome], dict[str, Any]]:
    """Baseline (with coverage), then every mutant of one module; records a Cosmic Ray session."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkItem, WorkResult

    module = ROOT / unit.module
    WORK.mkdir(exist_ok=True)
    log = WORK / f"pytest-{os.getpid()}.log"
    if time.perf_counter() > deadline:
        return [], {}
    # with a time budget the unmutated run is cut where the budget ends (the module is then not run)
    found = baseline(unit, settings, log, min(3600.0, max(deadline - time.perf_counter(), 1.0)))
    if found is None:
        return [], {"not_run": "the time budget ended during the unmutated run"}
    recorded, seconds = found
    info: dict[str, Any] = {"baseline_seconds": round(seconds, 1)}
    lines = recorded["lines"].get(str(module), {})
    durations = recorded["durations"]
    all_tests = list(durations)
    outcomes: list[Outcome] = []
    db_path = WORK / (unit.module.replace("/", "_").removesuffix(".py") + ".sqlite")
    db_path.unlink(missing_ok=True)
    with use_db(str(db_path), WorkDB.Mode.create) as db:
        for mutant in mutants:
            if time.perf_counter() > deadline:
                break
            job = uuid.uuid4().hex
            db.add_work_item(WorkItem.single(job, mutant.spec))
            first, last = mutant.statement
            executed = [str(n) for n in range(first, last + 1) if str(n) in lines]
            selected = sorted({t for n in executed for t in lines[n]})
            if executed and not selected:  # only run at import: every test of the module
                selected = all_tests
            start = time.perf_counter()
            with applied(mutant) as (original, mutated):
                if mutated is None:
                    continue
                diff = "".join(_diff(original, mutated, unit.module))
                equivalent = _equivalent(settings, unit.module, diff)
                if not executed:
                    result, killed_by = "no_tests", ""
                else:
                    ordered = _order(selected, durations)
                    budget = settings.timeout_factor * sum(durations.get(t, 1.0) for t in ordered) + settings.timeout_constant
                    cut = deadline - time.perf_counter() < budget  # the run's time budget ends first
                    status, _ = run_forked(ordered, min(budget, max(deadline - time.perf_counter(), 1.0)), log)
                    if status == "timeout" and cut:
                        break  # not run: the time budget ran out during it
                    if status == "no_tests_ran":
                        raise SystemExit(f"{unit.module}: pytest ran no test for a mutant (exit 4 or 5, see {log}); check the module's tests in {CONFIG.relative_to(ROOT)}")
                    result = {"passed": "survived", "failed": "killed", "crashed": "killed", "timeout": "timeout"}[status]
                    killed_by = first_failure(log) if result == "killed" else ""
            outcome = Outcome(mutant, result, time.perf_counter() - start, diff, killed_by, equivalent)
            outcomes.append(outcome)
            db.set_result(
                job,
                WorkResult(
                    worker_outcome=WorkerOutcome.NORMAL,
                    test_outcome=TestOutcome.SURVIVED if result in ("survived", "no_tests") else TestOutcome.KILLED,
                    output=killed_by or result,
                    diff=diff,
                ),
            )
            if result in ("survived", "no_tests") and not equivalent:
                old, new = describe(diff)
                say(f"  survived {unit.module}:{mutant.spec.start_pos[0]} {mutant.spec.operator_name}: {old}  ->  {new}")
    return outcomes, info


def _diff(original: str, mutated: str, name: str) -> list[str]:
    import difflib

    return list(difflib.unified_diff(original.splitlines(keepends=True), mutated.splitlines(keepends=True), f"a/{name}", f"b/{name}", n=0))


# -- changed lines -------------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def default_base() -> str | None:
    """The commit to compare with: the merge base with origin/main when HEAD is past it, else HEAD~1."""
    for ref in ("origin/main", "main"):
        base = _git("merge-base", ref, "HEAD")
        head = _git("rev-parse", "HEAD")
        if base and head and base.strip() != head.strip():
            return base.strip()
    return "HEAD~1" if _git("rev-parse", "--verify", "-q", "HEAD~1") else None


def changed_lines(base: str, module: str) -> set[int]:
    """Lines of ``module`` (working tree) added or changed since ``base``."""
    out = _git("diff", "-U0", base, "--", module) or ""
    lines: set[int] = set()
    for match in re.finditer(r"^@@ -\S+ \+(\d+)(?:,(\d+))? @@", out, re.M):
        start, count = int(match.group(1)), int(match.group(2) or 1)
        lines.update(range(start, start + count))
    return lines


# -- report --------------------------------------------------------------------------------------


def summarise(per_module: dict[str, list[Outcome]], infos: dict[str, dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """The JSON record: score, per-module counts, survivors, equivalents."""

    def counts(outcomes: list[Outcome]) -> dict[str, Any]:
        equivalent = sum(1 for o in outcomes if o.equivalent)
        killed = sum(1 for o in outcomes if o.status in ("killed", "timeout") and not o.equivalent)
        total = len(outcomes)
        scored = total - equivalent
        return {
            "mutants": total,
            "killed": sum(1 for o in outcomes if o.status == "killed" and not o.equivalent),
            "timeout": sum(1 for o in outcomes if o.status == "timeout" and not o.equivalent),
            "survived": sum(1 for o in outcomes if o.status == "survived" and not o.equivalent),
            "no_tests": sum(1 for o in outcomes if o.status == "no_tests" and not o.equivalent),
            "equivalent": equivalent,
            "score": round(100.0 * killed / scored, 2) if scored else None,
            "mutant_seconds": round(sum(o.seconds for o in outcomes), 1),
        }

    def entry(o: Outcome) -> dict[str, Any]:
        old, new = describe(o.diff)
        out = {"module": str(o.mutant.spec.module_path).replace(str(ROOT) + "/", ""), "line": o.mutant.spec.start_pos[0], "operator": o.mutant.spec.operator_name, "original": old, "mutant": new}
        if o.equivalent:
            out["reason"] = o.equivalent
        else:
            out["status"] = o.status
        return out

    everything = [o for outs in per_module.values() for o in outs]
    modules = {m: {**counts(outs), **infos.get(m, {})} for m, outs in per_module.items()}
    return {
        **counts(everything),
        "modules": modules,
        "survivors": [entry(o) for o in everything if o.status in ("survived", "no_tests") and not o.equivalent],
        "equivalent_mutants": [entry(o) for o in everything if o.equivalent],
    }


def run_named(settings: Settings, say: Any) -> list[dict[str, Any]]:
    """The hand-written mutants of issue 31 (``[[named]]`` in the TOML): each applied as a text
    replacement and run against its module's tests; returns who killed each."""
    results = []
    units = {u.module: u for u in settings.units}
    log = WORK / f"pytest-{os.getpid()}-named.log"
    commit = (_git("rev-parse", "HEAD") or "").strip()
    for named in settings.named:
        path = ROOT / named["module"]
        original = path.read_text(encoding="utf-8")
        if original.count(named["original"]) != 1:
            results.append({**named, "status": "not applied: the original text is not in the module exactly once"})
            say(f"  named mutant '{named['name']}': original text not found once in {named['module']}")
            continue
        saved = BACKUP / path.relative_to(ROOT)
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(original, encoding="utf-8")
        try:
            path.write_text(original.replace(named["original"], named["mutant"]), encoding="utf-8")
            tests = named.get("tests") or units[named["module"]].tests
            status, seconds = run_forked(tests, 1800.0, log)
        finally:
            path.write_text(original, encoding="utf-8")
            saved.unlink(missing_ok=True)
        killed_by = first_failure(log) if status == "failed" else ""
        results.append({**named, "status": {"failed": "killed", "passed": "survived"}.get(status, status), "killed_by": killed_by, "seconds": round(seconds, 1), "commit": commit})
        say(f"  named mutant '{named['name']}': {results[-1]['status']} {killed_by}")
    return results


def reclassify_equivalents(part: dict[str, Any], settings: Settings) -> None:
    """Move the survivors of a record that ``[[equivalent]]`` now lists into its equivalent mutants (in place),
    with the module's counts and score updated."""
    for survivor in list(part["survivors"]):
        reason = next(
            (e.reason for e in settings.equivalents if e.module == survivor["module"] and e.line == survivor["original"] and e.mutant == survivor["mutant"]),
            "",
        )
        if not reason:
            continue
        part["survivors"].remove(survivor)
        part["equivalent_mutants"].append({**survivor, "reason": reason})
        info = part["modules"][survivor["module"]]
        status = survivor.get("status") or ("survived" if info["survived"] else "no_tests")
        info[status] -= 1
        info["equivalent"] += 1
        scored = info["mutants"] - info["equivalent"]
        info["score"] = round(100.0 * (info["killed"] + info["timeout"]) / scored, 2) if scored else None
        part[status] -= 1
        part["equivalent"] += 1


def stale_modules(modules: dict[str, dict[str, Any]], settings: Settings, head: str = "HEAD") -> dict[str, list[str]]:
    """Modules whose source or configured test files changed between the commit each was measured at and ``head``.

    Returns:
        ``{module: [changed paths]}`` (``["commit <c> not in this repository"]`` when the commit is unknown);
        modules measured at ``head`` or unchanged since are left out.
    """
    tests = {u.module: sorted({t.split("::")[0] for t in u.tests}) for u in settings.units}  # node ids: their files
    stale: dict[str, list[str]] = {}
    for module, info in sorted(modules.items()):
        commit = info.get("commit", "")
        changed = _git("diff", "--name-only", commit, head, "--", module, *tests.get(module, [])) if commit else None
        if changed is None:
            stale[module] = [f"commit {commit or '(none)'} not in this repository"]
        elif changed.strip():
            stale[module] = changed.split()
    return stale


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One record from the records of runs of disjoint sets of modules (``--merge``)."""
    keys = ("mutants", "killed", "timeout", "survived", "no_tests", "equivalent", "mutant_seconds")
    merged: dict[str, Any] = {k: sum(p[k] for p in parts) for k in keys}
    scored = merged["mutants"] - merged["equivalent"]
    merged["score"] = round(100.0 * (merged["killed"] + merged["timeout"]) / scored, 2) if scored else None
    merged["modules"] = {m: v for p in parts for m, v in p["modules"].items()}
    merged["survivors"] = [s for p in parts for s in p["survivors"]]
    merged["equivalent_mutants"] = [e for p in parts for e in p["equivalent_mutants"]]
    merged["not_run_budget"] = sum(p.get("not_run_budget", 0) for p in parts)
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", help="mutate only this module (repeatable; path as in the TOML)")
    parser.add_argument("--changed", action="store_true", help="mutate only the lines changed since --base (the fast subset)")
    parser.add_argument("--base", help="commit to compare with for --changed (default: merge base with origin/main, else HEAD~1)")
    parser.add_argument("--budget", type=float, default=None, help="seconds after which no further mutant starts")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON record (default: {RESULTS.relative_to(ROOT)} for a run of every module)")
    parser.add_argument("--fail-under", type=float, default=None, help="exit 1 when the score is below this percentage")
    parser.add_argument("--min-mutants", type=int, default=1, help="apply --fail-under only when at least this many mutants ran")
    parser.add_argument("--sample", type=int, default=1, help="run 1 in N mutants (chosen by a stable hash); 1: all")
    parser.add_argument("--merge", type=Path, nargs="+", help="combine the records of --module runs of disjoint modules (and of --named runs) into --out")
    parser.add_argument("--note", help="a sentence stored in the --merge record (how the parts were measured)")
    parser.add_argument("--with-named", action="store_true", help="also run the hand-written mutants after --module runs")
    parser.add_argument("--named", action="store_true", help="run only the hand-written mutants of issue 31 ([[named]] in the TOML)")
    args = parser.parse_args(argv)
    # the mutated file must always be put back: Ctrl-C and SIGTERM unwind through the restore
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    def say(message: str) -> None:
        print(message, flush=True)

    for path in restore_backups():
        say(f"restored {path} (left mutated by an interrupted run)")
    settings = load_settings()
    if args.merge:
        loaded = [json.loads(p.read_text()) for p in args.merge]
        parts = [p for p in loaded if isinstance(p, dict)]
        named_runs = [n for p in loaded if isinstance(p, list) for n in p]  # records of --named runs
        modules = [m for p in parts for m in p["modules"]]
        if len(modules) != len(set(modules)):
            raise SystemExit("a module is in more than one record; merge the records of disjoint --module runs")
        for p in parts:  # each module keeps the commit it was measured at
            for info in p["modules"].values():
                info.setdefault("commit", p["commit"])
                info.setdefault("sample", p.get("sample", "all mutants"))
        for p in parts:  # equivalents listed in the TOML after a part was measured leave its score's denominator too
            reclassify_equivalents(p, settings)
        record = {**parts[-1], **merge(parts), "named": [n for p in parts for n in p.get("named", [])] + named_runs}
        record["commits"] = sorted({p["commit"] for p in parts})
        samples = sorted({info["sample"] for p in parts for info in p["modules"].values()})
        record["sample"] = samples[0] if len(samples) == 1 else "per module: " + "; ".join(
            f"{s}: {', '.join(sorted(m for p in parts for m, i in p['modules'].items() if i['sample'] == s))}" for s in samples
        )
        record["seconds"] = round(sum(p["seconds"] for p in parts), 1)
        record["command"] = "benchmarks/mutation.py --module ... per module, then --merge"
        if args.note:
            record["note"] = args.note
        # a module measured at an older commit whose source or tests changed since: its numbers are stale
        record["merged_at"] = (_git("rev-parse", "HEAD") or "").strip()
        record["stale"] = stale_modules(record["modules"], settings)
        out = args.out or RESULTS
        out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        say(f"mutation score {record['score']} % over {record['mutants']} mutants ({record['equivalent']} equivalent); written to {out}")
        for module, paths in record["stale"].items():
            say(f"  stale: {module} (measured at {record['modules'][module].get('commit', '?')[:12]}; changed since: {', '.join(paths)})")
        if not record["stale"]:
            say(f"  every module's source and tests are as at {record['merged_at'][:12]}" + (" (one commit)" if len(record["commits"]) == 1 else ""))
        return 0
    if args.named:
        WORK.mkdir(exist_ok=True)
        preload(sorted({t for n in settings.named for t in n.get("tests", [])}))
        named = run_named(settings, say)
        out = args.out or WORK / "named.json"
        out.write_text(json.dumps(named, indent=1) + "\n", encoding="utf-8")
        survived = [n["name"] for n in named if n["status"] != "killed"]
        say(f"named mutants: {len(named) - len(survived)} of {len(named)} killed" + (f"; not killed: {survived}" if survived else ""))
        return 1 if survived else 0
    units = [u for u in settings.units if not args.module or u.module in args.module]
    if args.module and len(units) != len(args.module):
        raise SystemExit(f"unknown module(s) {sorted(set(args.module) - {u.module for u in units})}; see {CONFIG.relative_to(ROOT)}")
    operators = operator_names(settings.operators)
    plan: list[tuple[Unit, list[Mutant]]] = []
    base = None
    if args.changed:
        base = args.base or default_base()
        if base is None:
            say("mutation: no base commit to compare with (a one-commit clone); nothing to mutate")
            return 0
    for unit in units:
        lines = changed_lines(base, unit.module) if base else None
        if lines is not None and not lines:
            continue
        found = [m for m in mutants_of(ROOT / unit.module, operators, lines, unit.scope) if sampled(m, args.sample)]
        if found:
            plan.append((unit, found))
    total = sum(len(m) for _, m in plan)
    if not plan:
        say(f"mutation: no line of the mutated modules changed since {base}; nothing to mutate")
        return 0
    say(f"mutation: {total} mutants in {len(plan)} module(s)" + (f" (lines changed since {base})" if base else ""))
    started = time.perf_counter()
    say(f"preloaded the tests' imports in {preload(sorted({t for u, _ in plan for t in u.tests})):.0f} s")
    deadline = started + args.budget if args.budget else float("inf")
    # a module's unmutated run (seconds to minutes) starts only while half the budget is left
    last_start = started + args.budget / 2 if args.budget else float("inf")
    per_module: dict[str, list[Outcome]] = {}
    infos: dict[str, dict[str, Any]] = {}
    try:
        for unit, found in plan:
            if time.perf_counter() > last_start:
                break
            t0 = time.perf_counter()
            outcomes, info = run_module(unit, settings, found, deadline, say)
            per_module[unit.module] = outcomes
            infos[unit.module] = {**info, "wall_seconds": round(time.perf_counter() - t0, 1), "tests": unit.tests}
            c = summarise({unit.module: outcomes}, {}, settings)
            say(f"{unit.module}: {c['mutants']} mutants, {c['killed'] + c['timeout']} killed, {c['survived'] + c['no_tests']} survived, {c['equivalent']} equivalent: score {c['score']} % ({infos[unit.module]['wall_seconds']:.0f} s)")
    finally:
        restore_backups()
    record = summarise(per_module, infos, settings)
    record["not_run_budget"] = total - sum(len(o) for o in per_module.values())
    if (not args.changed and not args.module) or args.with_named:
        say("the hand-written mutants of issue 31:")
        record["named"] = run_named(settings, say)
    return _finish(args, record, base, started, settings, say)


def _finish(args: Any, record: dict[str, Any], base: str | None, started: float, settings: Settings, say: Any) -> int:
    """Write the JSON record, say the score, and exit 1 below ``--fail-under``."""
    import cosmic_ray

    not_run = record.pop("not_run_budget", 0)
    record = {
        "tool": f"cosmic-ray {getattr(cosmic_ray, '__version__', '8.7.0')} via benchmarks/mutation.py (coverage-selected tests, forked runner)",
        "command": "make mutation" if not args.changed else "make mutation-fast",
        "commit": (_git("rev-parse", "HEAD") or "").strip(),
        "date": datetime.date.today().isoformat(),
        "python": sys.version.split()[0],
        "operators": settings.operators,
        "seconds": round(time.perf_counter() - started, 1),
        **({"base": base} if args.changed else {}),
        "sample": f"1 in {args.sample} mutants (stable hash of module, operator, occurrence)" if args.sample > 1 else "all mutants",
        **record,
    }
    out = args.out or (RESULTS if not args.changed and not args.module else WORK / "mutation.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    say(f"mutation score {record['score']} % over {record['mutants']} mutants ({record['equivalent']} equivalent), {len(record['survivors'])} surviving; written to {out}")
    if not_run:
        say(f"{not_run} mutant(s) not run: the time budget of {args.budget:.0f} s ran out")
    ran = record["mutants"] - record["equivalent"]
    if args.fail_under is not None and record["score"] is not None and record["score"] < args.fail_under and ran >= args.min_mutants:
        say(f"mutation score {record['score']} % is below {args.fail_under} %: kill the survivors above with tests (docs/contributing.md)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
