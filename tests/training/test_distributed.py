"""Data-parallel training on the CPU with the gloo backend: collectives, rank-aware draws, and a real
``torchrun`` launch of ``texkit train`` with 2 processes on the tiny generator."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from texkit import distributed
from texkit.config import parse_config
from texkit.distributed import DistributedContext, DistributedError
from texkit.training import Trainer, _mean_metrics, train


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- single-process behaviour ----------------------------------------------------------------


def test_context_without_torchrun_is_one_process(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    ctx = distributed.context()
    assert ctx == DistributedContext(0, 1, 0, None) and ctx.is_main and not ctx.enabled
    assert distributed.init_distributed("cpu") == ctx and not dist.is_initialized()
    assert distributed.device_for_rank("auto", ctx).type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_context_reads_torchrun_variables(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ctx = distributed.context()
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.is_main, ctx.enabled) == (3, 4, 1, False, True)
    assert distributed.device_for_rank("cpu", ctx) == torch.device("cpu")
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(DistributedError, match="not in"):
        distributed.context()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(DistributedError, match="not an integer"):
        distributed.context()


def test_single_process_collectives_are_identities():
    p = torch.ones(3, requires_grad=True)
    p.grad = torch.full((3,), 2.0)
    assert distributed.all_reduce_gradients([p], True) and torch.equal(p.grad, torch.full((3,), 2.0))
    assert not distributed.all_reduce_gradients([p], False)
    assert distributed.all_reduce_mean({"a": 1.5}) == {"a": 1.5}
    assert distributed.all_gather_objects("x") == ["x"]


def test_mean_metrics_merges_samples():
    one = {"reward/total": 0.25, "loss": -0.25, "prompt": "a vase"}
    assert _mean_metrics([[one]]) == one  # a single sample passes through unchanged (bit-exact)
    merged = _mean_metrics([[one, {"reward/total": 0.75, "loss": -0.75, "prompt": "a jar"}], [{"reward/total": 0.5, "loss": -0.5, "prompt": "a cup"}]])
    assert merged["reward/total"] == pytest.approx(0.5) and merged["loss"] == pytest.approx(-0.5)
    assert merged["prompt"] == "a vase" and merged["prompts"] == ["a vase", "a jar", "a cup"]


def test_draw_slots_differ_and_slot_zero_is_the_single_process_draw(tmp_path):
    import random

    cfg = parse_config({"prompts": {"text": [f"p{i}" for i in range(50)]}, "generator": {"name": "tiny"}, "device": "cpu", "output": {"dir": str(tmp_path)}})
    from texkit.session import Session

    session = Session.build(cfg, need_rewards=False)
    rng = random.Random(cfg.training.seed * 1_000_003 + 5)  # the single-process formula
    expected = (rng.choice(session.prompts), [rng.randrange(2**31) for _ in range(len(session.angles["paint_elevation"]))])
    assert session.draw(5) == session.draw(5, 0) == expected
    draws = [session.draw(5, slot) for slot in range(4)]
    assert len({tuple(seeds) for _, seeds in draws}) == 4
    assert session.draw(5, 3) == draws[3]  # pure function of (seed, step, slot)


def test_mesh_per_rank():
    cfg = parse_config({"mesh": {"path": "demo", "per_rank": ["sphere", "cube"]}})
    assert [cfg.mesh.path_for_rank(r) for r in range(3)] == ["sphere", "cube", "sphere"]
    assert parse_config({}).mesh.path_for_rank(5) == "demo"


# -- collectives with two gloo processes -------------------------------------------------------


def _collectives_worker(rank: int, port: int, out: str) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    ctx = distributed.init_distributed("cpu")
    a = torch.full((2, 2), float(rank + 1), requires_grad=True)  # 1 on rank 0, 2 on rank 1
    b = torch.zeros(3, requires_grad=True)
    c = torch.zeros(1, requires_grad=True)  # no rank has a gradient
    a.grad = torch.full((2, 2), float(2 * rank + 1))  # 1 and 3 -> mean 2
    b.grad = torch.ones(3) * 4.0 if rank == 1 else None  # only rank 1 -> mean 2
    ok_both = distributed.all_reduce_gradients([a, b, c], True)
    ok_one_bad = distributed.all_reduce_gradients([c], rank == 0)
    distributed.broadcast_parameters([a])
    mean = distributed.all_reduce_mean({"x": float(rank)})
    gathered = distributed.all_gather_objects(f"r{rank}")
    torch.save(
        {"ctx": (ctx.rank, ctx.world_size, ctx.backend), "a": a.detach(), "a_grad": a.grad, "b_grad": b.grad, "c_grad": c.grad,
         "ok_both": ok_both, "ok_one_bad": ok_one_bad, "mean": mean, "gathered": gathered},
        Path(out) / f"rank{rank}.pt",
    )
    distributed.cleanup()


def test_collectives_on_two_gloo_processes(tmp_path):
    mp.spawn(_collectives_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    for rank, res in enumerate(results):
        assert res["ctx"] == (rank, 2, "gloo")
        assert torch.equal(res["a_grad"], torch.full((2, 2), 2.0))
        assert torch.equal(res["b_grad"], torch.full((3,), 2.0))  # a missing gradient counts as zero
        assert res["c_grad"] is None  # nobody had one: stays None, as in one process
        assert res["ok_both"] and not res["ok_one_bad"]  # one rank's bad loss makes every rank skip
        assert torch.equal(res["a"], torch.ones(2, 2))  # rank 0's values everywhere
        assert res["mean"] == {"x": 0.5} and res["gathered"] == ["r0", "r1"]


# -- texkit train under torchrun ---------------------------------------------------------------

CONFIG = """
[mesh]
path = "demo"
[prompts]
text = ["a vase", "a jar", "a cup", "a bowl"]
[generator]
name = "tiny"
options = {{steps = 1, seed = 0}}
[cameras]
paint = {{elevation = [-20.0], azimuth = [0.0]}}
reward = {{elevation = [-20.0], azimuth = [90.0]}}
learn = ["paint"]
[texture]
size = 32
render_size = 32
[rewards.curvature_color]
[training]
steps = 2
lr = 3e-3
checkpoint_every = 1
before_after = false
[output]
dir = "{out}"
grid_views = 1
"""


@pytest.mark.slow
def test_torchrun_two_gloo_ranks_train_in_lockstep(tmp_path):
    run = tmp_path / "run"
    cfg_path = tmp_path / "cfg.toml"
    cfg_path.write_text(CONFIG.format(out=run))
    snaps = tmp_path / "snapshots"
    env = {**os.environ, distributed.SNAPSHOT_ENV: str(snaps), "OMP_NUM_THREADS": "1", "TEXKIT_DIST_BACKEND": "gloo"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "-m", "texkit.commands.cli", "train", str(cfg_path), "--set", 'device="cpu"']
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    start = [torch.load(snaps / f"start_rank{r}.pt") for r in range(2)]
    end = [torch.load(snaps / f"end_rank{r}.pt") for r in range(2)]
    lora = sorted(k for k in end[0] if k.startswith("lora/"))
    assert lora and end[0]["step"] == end[1]["step"] == 2
    for key in lora + ["camera/paint_elevation", "camera/paint_azimuth"]:
        assert torch.equal(start[0][key], start[1][key]), key
        assert torch.equal(end[0][key], end[1][key]), key  # the ranks stayed in lockstep
    assert any(not torch.equal(start[0][k], end[0][k]) for k in lora)  # and they trained
    assert not torch.equal(start[0]["camera/paint_azimuth"], end[0]["camera/paint_azimuth"])

    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2]  # one writer: no duplicated lines
    for m in lines:
        assert (m["world_size"], m["grad_accum"], m["effective_batch"]) == (2, 1, 2) and len(m["prompts"]) == 2
    assert "effective batch 2" in proc.stderr + proc.stdout
    assert (run / "report.html").exists() and (run / "checkpoints" / "latest").read_text().strip() == "step_000002"

    # the same samples in one process: world 2 x accum 1 == world 1 x accum 2 (slots 0 and 1).
    # One intra-op thread as in the ranks (OMP_NUM_THREADS=1): Adam turns even last-bit gradient
    # differences of near-zero entries into steps of size lr, so the summation order must match.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = parse_config(_toml(cfg_path, run=tmp_path / "single", grad_accum=2))
        single = Trainer(cfg, tmp_path / "single")
        history = single.fit()
    finally:
        torch.set_num_threads(threads)
    for key, value in single.snapshot().items():
        if key.startswith(("lora/", "camera/")):
            torch.testing.assert_close(value.detach(), end[0][key], rtol=1e-5, atol=1e-5, msg=key)
    for a, b in zip(history, lines):
        assert a["prompts"] == b["prompts"] and a["reward/total"] == pytest.approx(b["reward/total"], rel=1e-5)

    # resume the 2-process run with 1 process: the checkpoint does not depend on the world size
    torch.set_num_threads(1)
    try:
        resumed = train(parse_config(_toml(cfg_path, run=run, steps=3)), resume=True)
    finally:
        torch.set_num_threads(threads)
    steps = [m["step"] for m in resumed.metrics]
    assert steps == [1, 2, 3] and resumed.metrics[-1]["world_size"] == 1


def _toml(path: Path, run: Path, **training) -> dict:
    import tomllib

    data = tomllib.loads(path.read_text())
    data["output"]["dir"] = str(run)
    data["training"].update(training)
    data["device"] = "cpu"
    return data


def test_fp16_loss_scaling_unscales_before_clipping_and_resumes(tmp_path):
    import tomllib

    data = tomllib.loads(CONFIG.format(out=tmp_path))
    data["training"].update({"mixed_precision": "fp16", "steps": 1, "grad_accum": 2})
    data["device"] = "cpu"
    cfg = parse_config(data)
    trainer = Trainer(cfg, tmp_path)
    start = [p.detach().clone() for p in trainer.session.generator.trainable_parameters()]
    (metrics,) = trainer.fit()
    assert metrics["loss_scale"] == 65536.0 and "skipped" not in metrics and metrics["effective_batch"] == 2
    assert metrics["grad_norm"] < 1.0  # the norm of the unscaled gradients (scaled ones would be ~1e4 larger)
    assert any(not torch.equal(a, b) for a, b in zip(start, trainer.session.generator.trainable_parameters()))
    trainer.scaler.update(1024.0)
    trainer.save()
    again = Trainer(cfg, tmp_path)
    assert again.resume() and again.scaler.get_scale() == 1024.0
