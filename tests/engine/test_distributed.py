"""DDP under torchrun: 2 CPU processes (gloo) on 127.0.0.1.

(a) one DDP step on a global batch == one single-process step on the same samples;
(b) a short 2-rank run reaches the 1-rank run's accuracy; (c) only rank 0 writes;
(d) SIGKILL one rank mid-run, relaunch with --resume, and it completes; SIGTERM to the
launcher stops every rank at one step after saving `last`.

This file is also the torchrun worker for (a): ``python -m torch.distributed.run ... <this file>
step OUT``. Runs are tiny (2,000 MNIST training images, 2 epochs): torch start-up dominates.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from _ddp import RUN, STEPS, STEPS_PER_EPOCH
from cnnlab.config import TrainConfig
from cnnlab.engine import distributed as ddp
from cnnlab.engine.checkpoint import load_checkpoint
from cnnlab.errors import ConfigError

STEP_BATCH, STEP_LR = 16, 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(shared_data: Path) -> dict[str, str]:
    # tests/ on the path: this file also runs as a torchrun worker script and imports _ddp
    path = os.pathsep.join(
        filter(None, [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")])
    )
    return {
        **os.environ,
        "CNNLAB_DATA": str(shared_data),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": path,
    }


def _torchrun(*args: str) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), *args,
    ]  # fmt: skip


def _config_file(folder: Path, **extra) -> Path:
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump({**RUN, **extra}))
    return path


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------- pure helpers (no launch)


def test_global_batch_must_divide_and_nproc_is_stripped():
    assert ddp.split_batch(150, 2) == 75
    with pytest.raises(ConfigError, match="batch_size=150 does not divide over 4 processes"):
        ddp.split_batch(150, 4)
    cmd = ddp.torchrun_command(2, ["train", "--nproc=2", "--epochs", "1", "--nproc", "2"])
    assert cmd[1:3] == ["-m", "cnnlab.engine.torchrun"]
    assert cmd[-5:] == ["-m", "cnnlab", "train", "--epochs", "1"]
    assert not ddp.launched_by_torchrun({"WORLD_SIZE": "1", "RANK": "0"})
    assert ddp.launched_by_torchrun({"WORLD_SIZE": "2", "RANK": "0"})


# ---------------------------------------------------------------- (a) one step, exact


def _step_data():
    from cnnlab.data import ArrayDataset

    gen = torch.Generator().manual_seed(11)
    images = torch.randint(0, 256, (40, 1, 28, 28), generator=gen, dtype=torch.uint8)
    return ArrayDataset(images, torch.randint(0, 10, (40,), generator=gen), tuple("0123456789"))


def _one_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=STEP_LR, momentum=0.9)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def _fresh_model() -> torch.nn.Module:
    from cnnlab.models import create_model

    torch.manual_seed(0)
    return create_model("tutorial_cnn", dropout=0.0)


def _step_worker(out: Path) -> None:
    """torchrun worker: this rank's shard of the first global batch, one DDP SGD step."""
    from cnnlab.data import BatchLoader

    with ddp.process_group("cpu") as ctx:
        size = ddp.split_batch(STEP_BATCH, ctx.world_size)
        loader = BatchLoader(
            _step_data(), size, shuffle=True, seed=5, rank=ctx.rank, world_size=ctx.world_size
        )
        x, y = next(loader.batches(epoch=0))
        raw = _fresh_model()
        loss = _one_step(ctx.wrap_model(raw), x, y)
        total = ctx.all_reduce_sum(torch.tensor([loss * len(y), len(y)], dtype=torch.float64))
        torch.save(
            {
                "state": raw.state_dict(),
                "indices": loader.indices(0)[:size],
                "mean_loss": float(total[0] / total[1]),
            },
            out / f"rank{ctx.rank}.pt",
        )


def test_one_ddp_step_equals_one_single_process_step(tmp_path):
    from cnnlab.data import BatchLoader

    cmd = _torchrun(__file__, "step", str(tmp_path))
    proc = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]

    loader = BatchLoader(_step_data(), STEP_BATCH, shuffle=True, seed=5)
    x, y = next(loader.batches(epoch=0))
    single = _fresh_model()
    loss = _one_step(single, x, y)
    initial = _fresh_model().state_dict()
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # the two shards are disjoint and together are exactly the global batch
    shards = [set(r["indices"].tolist()) for r in ranks]
    assert not shards[0] & shards[1]
    assert shards[0] | shards[1] == set(loader.indices(0)[:STEP_BATCH].tolist())
    for rank in ranks:
        assert rank["mean_loss"] == pytest.approx(loss, abs=1e-6)  # metric all-reduce
        for key, want in single.state_dict().items():
            assert torch.allclose(rank["state"][key], want, rtol=0, atol=1e-6), key
    moved = max((single.state_dict()[k] - initial[k]).abs().max() for k in initial)
    assert moved > 1e-3  # the step really changed the weights


# ----------------------------------- one collective per step; buffers synced for evaluation


def _buffers_worker(out: Path) -> None:
    """torchrun worker: a short speednet (batch norm) run; saves this rank's buffers."""
    from cnnlab.data import digits  # noqa: F401  (the built-in dataset, no files)

    config = TrainConfig(
        model="speednet", dataset="digits", max_steps=6, batch_size=32, runs_dir=str(out)
    )
    result = ddp.fit_distributed(config)
    torch.save(dict(result.model.named_buffers()), out / f"buffers{os.environ['RANK']}.pt")


def test_ranks_evaluate_with_rank_zeros_batch_norm_statistics(tmp_path):
    cmd = _torchrun(__file__, "buffers", str(tmp_path))
    proc = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ranks = [torch.load(tmp_path / f"buffers{r}.pt", weights_only=True) for r in (0, 1)]
    means = [k for k in ranks[0] if k.endswith("running_mean")]
    assert means  # speednet has batch norm
    for key, value in ranks[0].items():
        assert torch.equal(ranks[1][key], value), key  # synchronised before the evaluation
    assert not torch.equal(ranks[0][means[0]], torch.zeros_like(ranks[0][means[0]]))


def test_ddp_wrapper_reduces_gradients_only(tmp_path):
    import torch.distributed as dist

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        ctx = ddp.DistributedContext(0, 1, 0, "gloo", torch.device("cpu"))
        model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
        assert ctx.wrap_model(model).forward_sync_buffers is False  # one collective per step
        ctx.buffers_every_step = True  # eval_every: evaluations fall between two steps
        assert ctx.wrap_model(model).forward_sync_buffers is True
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------- (b), (c): `cnnlab train --nproc 2`


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory, shared_data):
    """`cnnlab train --nproc 2` (which execs torchrun -m cnnlab train) in an empty folder."""
    work = tmp_path_factory.mktemp("ddp")
    cfg = _config_file(work)
    cmd = [sys.executable, "-m", "cnnlab", "train", "--nproc", "2", "--config", str(cfg),
           "--runs-dir", "runs", "--name", "ddp", "--json"]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=work, env=_env(shared_data), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, proc


def test_two_ranks_reach_the_one_rank_accuracy(two_rank_run, tmp_path, shared_data, monkeypatch):
    from cnnlab.engine import fit

    work, proc = two_rank_run
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["processes"] == 2 and summary["steps"] == STEPS
    monkeypatch.setenv("CNNLAB_DATA", str(shared_data))
    single = fit(TrainConfig(**RUN, threads=1, runs_dir=str(tmp_path), name="one"))
    one, two = single.history[-1]["val_accuracy"], summary["val_accuracy"]
    assert one > 0.8  # the runs learn something, so the comparison means something
    assert abs(two - one) <= 0.003, (one, two)


def test_only_rank_zero_writes_and_logs(two_rank_run):
    work, proc = two_rank_run
    run = "runs/ddp/version_0/"
    expected = [
        "run.yaml",
        *(run + f for f in ("checkpoints/best.pt", "checkpoints/best.safetensors")),
        *(run + f for f in ("checkpoints/last.pt", "config.yaml", "curves.png")),
        *(run + f for f in ("distributed.json", "history.json", "metrics.csv")),
    ]
    assert _files(work) == expected  # one run folder, no temp files, nothing from rank 1
    metrics = (work / run / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 1 + 2  # header + one row per epoch, written once
    info = json.loads((work / run / "distributed.json").read_text())
    assert info["world_size"] == 2 and info["backend"] == "gloo"
    assert (info["global_batch_size"], info["per_process_batch_size"]) == (50, 25)
    assert info["lr"] == 0.1 and info["threads_per_process"] == 1
    out = proc.stdout + proc.stderr
    assert out.count("run folder:") == 1 and proc.stdout.count('{"run_dir"') == 1
    assert "DDP: 2 processes (gloo, 1 thread each); global batch 50 = 2 x 25" in out


# ------------------------------------------------------ (d) kill one rank, then resume


def _wait_mid_run_checkpoint(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"training ended before a mid-run checkpoint (rc={proc.returncode})")
        try:
            payload = load_checkpoint(path) if path.is_file() else None
        except Exception:  # replaced while reading: try again
            payload = None
        if payload and payload["batch_in_epoch"] > 0 and payload["step"] < STEPS // 2:
            return
        time.sleep(0.05)
    pytest.fail("no mid-run checkpoint appeared")


def _kill_rank(launcher_pid: int, rank: str) -> None:
    import psutil

    for child in psutil.Process(launcher_pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == rank:
                child.send_signal(signal.SIGKILL)
                return
        except psutil.NoSuchProcess:
            continue
    pytest.fail(f"no worker with RANK={rank} under torchrun pid {launcher_pid}")


def test_kill_one_rank_then_resume_completes(two_rank_run, tmp_path, shared_data):
    cfg = _config_file(tmp_path, checkpoint_every=5)
    train = ["-m", "cnnlab", "train", "--config", str(cfg), "--runs-dir", "runs", "--name", "ddp"]
    env = _env(shared_data)
    run = tmp_path / "runs" / "ddp" / "version_0"
    proc = subprocess.Popen(
        _torchrun(*train, "--quiet"), cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_mid_run_checkpoint(run / "checkpoints" / "last.pt", proc)
        _kill_rank(proc.pid, "1")
        _, err = proc.communicate(timeout=120)  # torchrun tears the group down
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0 and "SIGKILL" in err, err[-2000:]
    killed_at = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    assert 0 < killed_at < STEPS

    resume = _torchrun(*train, "--resume", "auto", "--json")
    done = subprocess.run(
        resume, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming {Path('runs/ddp/version_0')}" in done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["steps"] == STEPS
    assert [p.name for p in run.parent.iterdir()] == ["version_0"]
    resumed = load_checkpoint(run / "checkpoints" / "last.pt")
    straight = load_checkpoint(two_rank_run[0] / "runs/ddp/version_0/checkpoints/last.pt")
    assert resumed["step"] == straight["step"] == STEPS
    for key, value in straight["model_state"].items():  # same run, uninterrupted: same bits
        assert torch.equal(resumed["model_state"][key], value), key


def test_sigterm_stops_every_rank_at_one_step_and_saves_last(tmp_path, shared_data):
    """SIGTERM to `cnnlab train --nproc 2` (the launcher): torchrun passes it on, the ranks
    agree on one step, rank 0 saves `last` and says how to resume; one line from the launcher,
    exit status 143, and no worker left for torchrun to kill."""
    cfg = _config_file(tmp_path, epochs=40)
    cmd = [sys.executable, "-m", "cnnlab", "train", "--nproc", "2", "--config", str(cfg),
           "--runs-dir", "runs", "--name", "ddp", "--quiet"]  # fmt: skip
    run = tmp_path / "runs" / "ddp" / "version_0"
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=_env(shared_data), stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoints" / "last.pt").is_file():  # epoch 1 is done
            assert proc.poll() is None and time.monotonic() < deadline, "no epoch finished"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert time.monotonic() - sent < 25  # torchrun's shutdown timeout (30 s) never ran out
    assert "Traceback" not in err and "forcefully" not in err, err[-3000:]
    assert err.count("cnnlab: terminated (SIGTERM): stopped at step ") == 1  # rank 0 alone
    step = int(err.split("stopped at step ")[1].split(",")[0])
    assert f"cnnlab: resume with: cnnlab train --resume {Path('runs/ddp/version_0')}" in err
    assert err.rstrip().endswith("cnnlab: torchrun stopped its workers on SIGTERM")
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    assert saved["step"] == step and 0 < step < 40 * STEPS_PER_EPOCH


if __name__ == "__main__" and sys.argv[1:2] == ["step"]:
    _step_worker(Path(sys.argv[2]))
if __name__ == "__main__" and sys.argv[1:2] == ["buffers"]:
    _buffers_worker(Path(sys.argv[2]))


def test_end_worker_flushes_and_exits_with_the_code():
    """torchrun workers end with os._exit after their group is closed (see end_worker)."""
    code = (
        "import sys; from cnnlab.engine import distributed as ddp; "
        "print('out', end=''); sys.stderr.write('err'); ddp.end_worker(3)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "out", "err")
