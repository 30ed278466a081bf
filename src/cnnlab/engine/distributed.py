"""Data-parallel training with ``torchrun`` and DistributedDataParallel (gloo on CPU, nccl on CUDA).

``fit()`` takes a ``dist`` object (rank, world_size, is_main, all_reduce_sum, barrier,
wrap_model); :class:`DistributedContext` is the DDP one, built from the ``env://`` variables
torchrun sets (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``).

Semantics (stated once, logged in every run as ``distributed.json``):

- ``batch_size`` is the *global* batch: each of the N processes takes ``batch_size / N``
  images of the same global batch, so one DDP step computes the same averaged gradient as one
  single-process step on that batch. It must divide evenly.
- The learning rate is used *as given*, never scaled by the number of processes: the optimiser
  sees the same global batch and gradient as a single-process run. To train with a larger
  global batch, raise ``batch_size`` and scale ``lr`` yourself (linear rule: k x batch, k x lr).
- Rank 0 resolves (downloads) the data first while the others wait; only rank 0 writes the run
  folder (checkpoints, logs, pictures); every rank reads the same checkpoint on ``--resume``.
- One collective per training step (the gradient all-reduce); rank 0's batch-norm statistics
  are copied to every rank before each evaluation.
- When torchrun restarts the workers (``--max-restarts``), the job resumes its own run folder
  (found by torchrun's job id in ``distributed.json``) from ``checkpoints/last.pt``.

>>> launched_by_torchrun({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})
True
>>> split_batch(150, 2)
75
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch

from cnnlab.config import TrainConfig
from cnnlab.engine.callbacks import Callback
from cnnlab.errors import CnnlabError, ConfigError, DataError
from cnnlab.fileio import atomic_write_text

log = logging.getLogger(__name__)

INFO_FILE = "distributed.json"


def launched_by_torchrun(environ: Mapping[str, str] | None = None) -> bool:
    """True inside a process started by torchrun (or any env:// launcher) with WORLD_SIZE > 1."""
    env = os.environ if environ is None else environ
    return all(k in env for k in ("WORLD_SIZE", "RANK")) and int(env["WORLD_SIZE"]) > 1


def env_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's global rank from the environment (0 when not launched by torchrun)."""
    env = os.environ if environ is None else environ
    return int(env.get("RANK", "0"))


def split_batch(batch_size: int, world_size: int) -> int:
    """Per-process batch for a global ``batch_size``; ConfigError when it does not divide.

    >>> split_batch(64, 4)
    16
    """
    if batch_size % world_size:
        raise ConfigError(
            f"batch_size={batch_size} does not divide over {world_size} processes: "
            f"--batch-size is the global batch, use a multiple of {world_size}"
        )
    return batch_size // world_size


@dataclass
class DistributedContext:
    """The ``dist`` object fit() uses under torchrun: one process of a DDP group."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device
    # broadcast rank 0's buffers before every forward (torch's default): needed only when
    # evaluations fall inside an epoch (eval_every), where no hook runs between step and eval
    buffers_every_step: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all processes (returned on the device it came from)."""
        return self._all_reduce(tensor, "SUM")

    def all_reduce_max(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise maximum of ``tensor`` over all processes."""
        return self._all_reduce(tensor, "MAX")

    def _all_reduce(self, tensor: torch.Tensor, op: str) -> torch.Tensor:
        import torch.distributed as dist

        work = tensor.to(self.device)  # nccl reduces CUDA tensors only
        dist.all_reduce(work, op=getattr(dist.ReduceOp, op))
        return work.to(tensor.device)

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel: rank 0's weights are broadcast, gradients all-reduced.

        One collective per step: the gradient all-reduce. Buffers (batch-norm statistics) are
        not broadcast before every forward (torch's default, a second collective per step)
        unless ``buffers_every_step``; :class:`BufferSync` copies rank 0's to every rank
        before each evaluation instead. Gradients live in DDP's buckets (no copy).
        """
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(
            model,
            device_ids=ids,
            forward_sync_buffers=self.buffers_every_step,  # rank 0's are still copied at init
            gradient_as_bucket_view=True,
        )

    def broadcast_buffers(self, model: torch.nn.Module) -> None:
        """Copy rank 0's buffers (batch-norm running statistics) into every rank's model."""
        import torch.distributed as dist

        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process (a picklable object)."""
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the process group described by torchrun's ``env://`` variables.

    gloo when training on the CPU, nccl on CUDA (each process on GPU ``LOCAL_RANK``).
    """
    import torch.distributed as dist

    from cnnlab.engine.device import pick_device

    if not launched_by_torchrun():
        raise ConfigError("not launched by torchrun: WORLD_SIZE/RANK are not set (or WORLD_SIZE=1)")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    kind = pick_device(device).type
    if kind == "cuda":
        torch.cuda.set_device(local_rank)  # so fit()'s "cuda" means this process's GPU
        where = torch.device("cuda", local_rank)
    else:
        where = torch.device("cpu")
    backend = "nccl" if kind == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world)
    return DistributedContext(rank, world, local_rank, backend, where)


@contextlib.contextmanager
def process_group(device: str = "auto") -> Iterator[DistributedContext]:
    """``with process_group() as ctx:`` ... ``destroy_process_group`` on the way out."""
    ctx = init_distributed(device)
    try:
        yield ctx
    finally:
        gc.collect()  # a DDP wrapper left in a cycle holds the group: free it while both live
        ctx.close()


def end_worker(code: int) -> NoReturn:
    """End a torchrun worker process after its group is closed: flush, then ``os._exit``.

    Letting the interpreter finalise instead sometimes aborted a finished worker under load
    ("terminate called without an active exception": a C++ thread of the gloo group torn down
    by the finalisation), which torchrun counts as a failed worker and restarts.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def fetch_data_main_first(config: TrainConfig, ctx: DistributedContext) -> None:
    """Rank 0 finds (or downloads) the dataset while the others wait; then the others look.

    Order: global rank 0; then the first process of every other machine (``LOCAL_RANK`` 0,
    which downloads when that machine has no copy); then everyone else, who finds the local
    copy. Downloads are atomic (temp + rename), so no process ever reads a partial file. A
    failure on rank 0 is sent to every rank, so all stop with the same error instead of
    waiting at the barrier.
    """
    from cnnlab.data import get_info, locate_dataset
    from cnnlab.engine.data_setup import is_folder_dataset

    if is_folder_dataset(config.dataset) or get_info(config.dataset).builtin:
        return
    error = None
    if ctx.is_main:
        try:
            locate_dataset(config.dataset, config.data_dir, config.download)
        except CnnlabError as exc:
            error = str(exc)
    error = ctx.broadcast(error)  # also the barrier: nobody looks before rank 0 is done
    if error is not None:
        raise DataError(error)
    node_first = ctx.local_rank == 0 and not ctx.is_main
    if node_first:  # other machines: one process per machine fetches
        locate_dataset(config.dataset, config.data_dir, config.download)
    ctx.barrier()
    if not ctx.is_main and not node_first:
        locate_dataset(config.dataset, config.data_dir, config.download)


def per_process_threads(config: TrainConfig, environ: Mapping[str, str] | None = None) -> int:
    """Threads per process: ``config.threads`` or the usable cores shared by the local ranks."""
    from cnnlab.engine.device import usable_cores

    env = os.environ if environ is None else environ
    local = max(1, int(env.get("LOCAL_WORLD_SIZE", "1")))
    return config.threads or max(1, usable_cores() // local)


def describe(config: TrainConfig, ctx: Any) -> dict[str, Any]:
    """The batch / learning-rate semantics of this run, as written to ``distributed.json``.

    >>> from cnnlab.engine.loop import SingleProcess
    >>> describe(TrainConfig(batch_size=150), SingleProcess())["per_process_batch_size"]
    150
    """
    from cnnlab.engine.optim import learning_rate

    lr = learning_rate(config)  # the number fit() really uses (the optimiser default if None)
    return {
        "world_size": ctx.world_size,
        "backend": getattr(ctx, "backend", "none"),
        "threads_per_process": config.threads,
        "global_batch_size": config.batch_size,
        "per_process_batch_size": split_batch(config.batch_size, ctx.world_size),
        "batch_size_meaning": "global: images per optimiser step summed over all processes",
        "lr": lr,
        "lr_scaling": "none: lr applies to the global batch, as in a single-process run",
    }


def summary_line(info: dict[str, Any]) -> str:
    """One human line for the CLI.

    >>> summary_line({"world_size": 2, "backend": "gloo", "threads_per_process": 1,
    ...     "global_batch_size": 150, "per_process_batch_size": 75, "lr": 0.001})
    'DDP: 2 processes (gloo, 1 thread each); global batch 150 = 2 x 75; lr 0.001 (not scaled)'
    """
    threads = info["threads_per_process"]
    line = (
        f"DDP: {info['world_size']} processes ({info['backend']}, {threads} thread"
        f"{'' if threads == 1 else 's'} each); global batch {info['global_batch_size']} = "
        f"{info['world_size']} x {info['per_process_batch_size']}; lr {info['lr']:g} (not scaled)"
    )
    if "resumed_after_restart" in info:  # torchrun restarted the workers
        where = info["resumed_after_restart"]
        line += f"; restarted: resuming {where}" if where else "; restarted: no checkpoint yet"
    return line


class BufferSync:
    """fit() callback: every rank evaluates with rank 0's batch-norm statistics.

    Training never reads the running statistics (batch norm uses the batch's), so they are
    synchronised only where they are read: after the last step of an epoch and of training,
    before the evaluation there. (With ``eval_every`` DDP broadcasts them every step, see
    :meth:`DistributedContext.wrap_model`.) Checkpoints hold rank 0's.
    """

    def __init__(self, ctx: DistributedContext):
        self.ctx = ctx

    def __getattr__(self, name: str):
        if name.startswith("on_"):
            return lambda *args, **kw: None
        raise AttributeError(name)

    def on_batch_end(self, state: Any, logs: dict[str, Any]) -> None:
        if state.epoch_done or state.step >= state.total_steps:
            self.ctx.broadcast_buffers(state.raw_model)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class DistributedInfo(Callback):
    """fit() callback: rank 0 writes ``distributed.json`` into the run folder at the start."""

    def __init__(self, info: dict[str, Any]):
        self.info = info

    def on_train_begin(self, state: Any) -> None:
        if state.dist.is_main:
            info = {**self.info, "run_dir": str(state.run_dir)}
            atomic_write_text(Path(state.run_dir) / INFO_FILE, json.dumps(info, indent=1))


def effective_config(config: TrainConfig, resume: str | Path | None) -> TrainConfig:
    """The config fit() will really use: on resume the checkpoint's (batch size, optimiser)."""
    if resume is None:
        return config
    from cnnlab.engine.checkpoint import load_checkpoint

    saved = load_checkpoint(Path(resume) / "checkpoints" / "last.pt")["config"]
    return TrainConfig.from_dict(saved).with_overrides(threads=config.threads)


def fit_distributed(
    config: TrainConfig,
    *,
    progress: Any = None,
    callbacks: Sequence[Any] = (),
    resume: str | Path | None = None,
    on_start: Any = None,
):
    """``fit()`` as one process of a torchrun group; returns rank 0's run folder on every rank.

    Only rank 0 gets ``progress`` and writes files. The returned run's ``images`` (training
    images seen) is the total over all processes (so images / train_seconds is the group's
    throughput). ``on_start(info)`` is
    called on rank 0 with the :func:`describe` dict before training.

    When torchrun restarts the workers of a job (``--max-restarts``), the new workers continue
    the job's own run folder from its ``checkpoints/last.pt`` (see :func:`restart_run_dir`).

    >>> # torchrun --nproc-per-node 2 my_script.py, where my_script.py calls:
    >>> fit_distributed(TrainConfig(dataset="digits", epochs=1))  # doctest: +SKIP
    """
    from cnnlab.engine.loop import fit

    config = config.with_overrides(threads=per_process_threads(config))
    with process_group(config.device) as ctx:
        restarted = resume is None and _job_restarted(ctx)
        if restarted:  # rank 0 looks; everyone resumes the same folder (or starts afresh)
            found = restart_run_dir(config) if ctx.is_main else None
            found = ctx.broadcast(None if found is None else str(found))
            resume = None if found is None else Path(found)
        effective = effective_config(config, resume)
        ctx.buffers_every_step = effective.eval_every is not None
        info = describe(effective, ctx)  # checks the batch divides
        info.update(job_info())
        if restarted:
            info["resumed_after_restart"] = None if resume is None else str(resume)
        if ctx.is_main and on_start is not None:
            on_start(info)
        fetch_data_main_first(config, ctx)
        extra = [BufferSync(ctx), *callbacks, DistributedInfo(info)]
        result = fit(
            config,
            progress=progress if ctx.is_main else None,
            callbacks=extra,
            resume=resume,
            dist=ctx,
        )
        result.run_dir = Path(ctx.broadcast(str(result.run_dir)))
        result.images = int(ctx.all_reduce_sum(torch.tensor([result.images]))[0])
        ctx.barrier()  # nobody leaves (and tears down the group) while rank 0 still writes
    return result


def job_info(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """torchrun's job id and this process's restart count, as recorded in ``distributed.json``.

    >>> job_info({"TORCHELASTIC_RUN_ID": "mnist-7", "TORCHELASTIC_RESTART_COUNT": "1"})
    {'job_id': 'mnist-7', 'restart_count': 1}
    """
    env = os.environ if environ is None else environ
    return {
        "job_id": env.get("TORCHELASTIC_RUN_ID", ""),
        "restart_count": int(env.get("TORCHELASTIC_RESTART_COUNT", "0")),
    }


def _job_restarted(ctx: DistributedContext) -> bool:
    """True when torchrun restarted the workers of any node of this job.

    The max over all ranks: after a restart torchrun may give rank 0 to a node whose agent did
    not count one (a node that only followed the others into the new rendezvous).
    """
    count = torch.tensor([job_info()["restart_count"]], dtype=torch.int64)
    return int(ctx.all_reduce_sum(count)[0]) > 0


def restart_run_dir(config: TrainConfig, environ: Mapping[str, str] | None = None) -> Path | None:
    """The run folder this torchrun job started, if it holds a ``checkpoints/last.pt``.

    Found by the job id (torchrun's ``--rdzv-id``) written into ``distributed.json``: the
    newest version of ``<runs_dir>/<name>`` with the same id. None when the job id is unknown
    or no checkpoint was written before the failure (training then starts again from step 0
    in a new folder).
    """
    from cnnlab.engine.runs import versions

    job = job_info(environ)["job_id"]
    if not job:
        return None
    for run in reversed(versions(Path(config.runs_dir) / config.run_name)):
        try:
            info = json.loads((run / INFO_FILE).read_text())
        except (OSError, ValueError):
            continue
        if info.get("job_id") == job:
            return run if (run / "checkpoints" / "last.pt").is_file() else None
    return None


def strip_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (what the torchrun workers receive).

    >>> strip_nproc(["train", "--nproc", "2", "--epochs", "1"])
    ['train', '--epochs', '1']
    """
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def torchrun_command(nproc: int, argv: Sequence[str]) -> list[str]:
    """The torchrun command that runs ``cnnlab ARGV``: ``python -m cnnlab.engine.torchrun``,
    torch's launcher reporting a stop signal or a failed worker in one message
    (:mod:`cnnlab.engine.torchrun`).

    ``--standalone`` gives a one-machine rendezvous on a free local port.

    >>> torchrun_command(2, ["train", "--nproc", "2"])[1:6]
    ['-m', 'cnnlab.engine.torchrun', '--standalone', '--nproc-per-node', '2']
    """
    if nproc < 1:
        raise ConfigError(f"nproc={nproc} must be >= 1")
    return [
        sys.executable,
        "-m",
        "cnnlab.engine.torchrun",
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        "-m",
        "cnnlab",
        *strip_nproc(argv),
    ]


def exec_torchrun(nproc: int, argv: Sequence[str]) -> None:
    """Replace this process with torchrun running ``nproc`` copies of ``cnnlab ARGV``."""
    if "train" not in argv:
        raise ConfigError(f"--nproc {nproc} needs the command line `cnnlab train ... --nproc N`")
    cmd = torchrun_command(nproc, argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)
