"""Two machines for real: ``torchrun --nnodes 2`` across two network namespaces.

Each "host" is a network namespace with one end of a veth pair (10.213.0.1 and 10.213.0.2), a
torchrun agent and one worker; they meet through torchrun's c10d rendezvous and train with gloo
over that link only. Checked:

(a) the job leaves one run folder and reaches the one-process accuracy (within 0.3 points);
(b) with ``--max-restarts 1``, SIGKILL of one host's worker mid-epoch: both agents restart their
    workers, the job resumes its own run folder from ``last.pt`` and ends with weights
    bit-identical to the uninterrupted two-host run.

Needs root (namespaces). On Debian ``iproute2`` is installed when ``ip`` is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from _ddp import RUN, STEPS, STEPS_PER_EPOCH
from cnnlab.config import TrainConfig
from cnnlab.engine.checkpoint import load_checkpoint

SUBNET = "10.213.0"
PORT = 29613
TIMEOUT = 600  # seconds for one two-host job (a loaded 2-core machine is slow)
TRAIN_ARGS = ("--runs-dir", "runs", "--name", "nodes", "--threads", "1", "--json")


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode:
        pytest.fail(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def _ensure_ip_command() -> None:
    if shutil.which("ip"):
        return
    if os.geteuid() == 0 and Path("/etc/debian_version").is_file():
        subprocess.run(["apt-get", "install", "-y", "-q", "iproute2"], capture_output=True)
    if not shutil.which("ip"):
        pytest.fail("the `ip` command is missing: install iproute2 (apt-get install iproute2)")


@pytest.fixture(scope="module")
def hosts(request):
    """Two network namespaces joined by a veth pair: [(netns, interface, address), ...]."""
    if os.geteuid() != 0:
        pytest.fail("network namespaces need root: run this test as root (ip netns add)")
    _ensure_ip_command()
    tag = f"cnl{os.getpid() % 100000}"
    pair = [(f"{tag}a", f"{tag}va", f"{SUBNET}.1"), (f"{tag}b", f"{tag}vb", f"{SUBNET}.2")]

    def remove() -> None:
        for netns, _, _ in pair:
            pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
            for pid in pids.stdout.split():  # leftovers of a failed test: ours
                with contextlib.suppress(OSError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)

    request.addfinalizer(remove)
    for netns, _, _ in pair:
        _ip("netns", "add", netns)
    (ns_a, if_a, _), (ns_b, if_b, _) = pair
    _ip("link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
    for netns, dev, addr in pair:
        _ip("-n", netns, "addr", "add", f"{addr}/24", "dev", dev)
        _ip("-n", netns, "link", "set", dev, "up")
        _ip("-n", netns, "link", "set", "lo", "up")
    return pair


def _launch(hosts, work: Path, data: Path, job: str, *train: str) -> list[subprocess.Popen]:
    """One torchrun agent per namespace; the first hosts the rendezvous store."""
    master = hosts[0][2]
    procs = []
    for i, (netns, dev, addr) in enumerate(hosts):
        env = {
            **os.environ,
            "CNNLAB_DATA": str(data),
            "OMP_NUM_THREADS": "1",
            "GLOO_SOCKET_IFNAME": dev,  # the veth, not whatever the hostname resolves to
            # A fresh worker store per attempt: torchrun's shared agent store keeps the first
            # attempt's gloo addresses, and restarted workers dial the dead ones.
            "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1",
        }
        cmd = ["ip", "netns", "exec", netns, sys.executable, "-m", "torch.distributed.run",
               "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
               "--rdzv-endpoint", f"{master}:{PORT}", "--rdzv-id", job,
               "--rdzv-conf", f"is_host={int(i == 0)}", "--local-addr", addr,
               "--max-restarts", "1", "-m", "cnnlab", "train", *train]  # fmt: skip
        out = open(work / f"host{i}.log", "w")  # noqa: SIM115 (closed by _finish)
        procs.append(subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=out, text=True))
    return procs


def _finish(procs: list[subprocess.Popen], work: Path) -> list[str]:
    """Wait for both agents (bounded), return their logs; fail with the logs on an error."""
    deadline = time.monotonic() + TIMEOUT
    try:
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    logs = [(work / f"host{i}.log").read_text() for i in range(len(procs))]
    codes = [p.returncode for p in procs]
    assert codes == [0, 0], f"exit codes {codes}\n" + "\n----\n".join(s[-3000:] for s in logs)
    return logs


def _summary(logs: list[str]) -> dict:
    lines = [ln for log in logs for ln in log.splitlines() if ln.startswith('{"run_dir"')]
    assert len(lines) == 1, lines  # printed once, by rank 0 (on whichever host it is)
    return json.loads(lines[0])


def _config(work: Path, **extra) -> Path:
    path = work / "run.yaml"
    path.write_text(yaml.safe_dump({**RUN, **extra}))
    return path


@pytest.fixture(scope="module")
def two_host_run(hosts, tmp_path_factory, shared_data):
    work = tmp_path_factory.mktemp("nodes")
    cfg = _config(work, checkpoint_every=5)
    train = ("--config", str(cfg), *TRAIN_ARGS)
    logs = _finish(_launch(hosts, work, shared_data, "straight", *train), work)
    return work, logs


def test_two_hosts_one_run_folder_and_one_process_accuracy(
    two_host_run, tmp_path, shared_data, monkeypatch
):
    from cnnlab.engine import fit

    work, logs = two_host_run
    summary = _summary(logs)
    assert summary["processes"] == 2 and summary["steps"] == STEPS
    assert [p.name for p in (work / "runs" / "nodes").iterdir()] == ["version_0"]
    info = json.loads((work / "runs/nodes/version_0/distributed.json").read_text())
    assert info["world_size"] == 2 and info["job_id"] == "straight"
    monkeypatch.setenv("CNNLAB_DATA", str(shared_data))
    single = fit(TrainConfig(**RUN, threads=1, runs_dir=str(tmp_path), name="one"))
    one, two = single.history[-1]["val_accuracy"], summary["val_accuracy"]
    assert one > 0.8  # the runs learn something, so the comparison means something
    assert abs(two - one) <= 0.003, (one, two)


def _wait_mid_epoch_checkpoint(path: Path, procs: list[subprocess.Popen]) -> int:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            pytest.fail("a host ended before a mid-epoch checkpoint was written")
        try:
            payload = load_checkpoint(path) if path.is_file() else None
        except Exception:  # replaced while reading: try again
            payload = None
        if payload and payload["batch_in_epoch"] > 0 and payload["step"] < STEPS_PER_EPOCH:
            return payload["step"]
        time.sleep(0.05)
    pytest.fail("no mid-epoch checkpoint appeared")


def _kill_worker(agent: subprocess.Popen) -> None:
    """SIGKILL the training process under one host's torchrun agent."""
    import psutil

    for child in psutil.Process(agent.pid).children(recursive=True):
        try:
            if "RANK" in child.environ():
                child.send_signal(signal.SIGKILL)
                return
        except psutil.NoSuchProcess:
            continue
    pytest.fail(f"no worker under torchrun pid {agent.pid}")


def test_lost_worker_restarts_and_resumes_bit_identically(two_host_run, hosts, shared_data):
    straight_work, _ = two_host_run
    work = straight_work.parent / "nodes-killed"
    work.mkdir()
    cfg = _config(work, checkpoint_every=5)
    train = ("--config", str(cfg), *TRAIN_ARGS)
    procs = _launch(hosts, work, shared_data, "killed", *train)
    run = work / "runs" / "nodes" / "version_0"
    try:
        saved_at = _wait_mid_epoch_checkpoint(run / "checkpoints" / "last.pt", procs)
        _kill_worker(procs[1])
    finally:
        logs = _finish(procs, work)
    assert 0 < saved_at < STEPS_PER_EPOCH
    summary = _summary(logs)
    assert summary["steps"] == STEPS and summary["run_dir"] == "runs/nodes/version_0"
    assert [p.name for p in run.parent.iterdir()] == ["version_0"]  # the same folder went on
    assert "restarted: resuming runs/nodes/version_0" in "".join(logs)
    info = json.loads((run / "distributed.json").read_text())
    assert info["resumed_after_restart"] == "runs/nodes/version_0"
    resumed = load_checkpoint(run / "checkpoints" / "last.pt")
    straight = load_checkpoint(straight_work / "runs/nodes/version_0/checkpoints/last.pt")
    assert resumed["step"] == straight["step"] == STEPS
    for key, value in straight["model_state"].items():
        assert torch.equal(resumed["model_state"][key], value), key
