"""The documentation cannot drift: its console examples run, its pictures exist.

Pages: README.md and every docs/**/*.md except docs/_incoming/ (drafts not yet published).

Console examples: a fenced block opened with ```console. In it, a line starting with ``$ `` is a
command (a trailing backslash continues it on the next line, ``# ...`` is a comment); the lines
after it, up to the next ``$ `` line or the end of the block, are its expected output. Only
``cnnlab ...`` commands run, each in its own process as ``python -m cnnlab ...`` with this
interpreter (forked from one that imported cnnlab once, see ``FORK_SERVER``); other commands
(``make``, ``pip``) are shown to the reader but not run. A page's blocks run in order in one
fresh working folder, so a later command can use the run folder an earlier one made. The folder
starts with ``my_digit.png``: MNIST test image 0 (a 7) drawn as dark ink on white paper.
Progress bars are switched off (``TQDM_DISABLE=1``; stderr is not a terminal either, so
``cnnlab train`` prints plain progress lines, one per evaluation and, on a slow machine, some
within an epoch: expected outputs allow for them). stdout and stderr are compared together.
A command that already ran on another page with the same arguments and the same files is
replayed from that run (see ``CommandCache``): ``train --recipe fast`` trains once per session.

Comparison: each line is right-stripped; a line ``...`` matches any number of lines, and ``...``
inside a line matches any text there. The exit status must be 0, or 2 when the expected output
holds a ``cnnlab: error:`` line. A comment right before the fence changes that:
``<!-- check: exit-status -->`` checks only the exit status (0), ``<!-- check: exit-status N -->``
expects status N; use it for output that changes from run to run (timings).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 260
WORK_LOG = re.compile(
    r"\b[Ii]ssue \d+\b|\b[Ii]ssue #\d+|this session|previous session|the speed issue"
    r"|\bthe issue measured\b"
)
IMAGE_MD = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE_HTML = re.compile(r"<img\b[^>]*\bsrc=[\"']([^\"']+)[\"']", re.IGNORECASE)
MARKER = re.compile(r"<!--\s*check:\s*exit-status(?:\s+(\d+))?\s*-->")
COMMAND_TIMEOUT = 600


def doc_pages() -> list[Path]:
    pages = [ROOT / "README.md"]
    for page in sorted((ROOT / "docs").rglob("*.md")):
        if "_incoming" not in page.relative_to(ROOT / "docs").parts:
            pages.append(page)
    return pages


@dataclass
class Example:
    """One ``$ command`` of a console block with what it should print."""

    command: str
    line: int  # 1-based line of the command in the page
    expected: list[str] = field(default_factory=list)
    status_only: bool = False
    status: int | None = None  # None: 0, or 2 when the output shows an error


def console_examples(text: str) -> list[Example]:
    """Every command of every ```console block, in page order."""
    lines = text.splitlines()
    examples: list[Example] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        marker = MARKER.search(lines[i - 1]) if i > 0 else None
        i += 1
        current: Example | None = None
        while i < len(lines) and lines[i].strip() != "```":
            line = lines[i]
            if line.startswith("$ "):
                start, command = i, line[2:]
                while command.rstrip().endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command.rstrip()[:-1].rstrip() + " " + lines[i].strip()
                current = Example(command.strip(), start + 1)
                if marker:
                    current.status_only = True
                    current.status = int(marker.group(1) or 0)
                examples.append(current)
            elif current is not None:
                current.expected.append(line.rstrip())
            i += 1
        i += 1
    return examples


def line_matches(expected: str, actual: str) -> bool:
    """Equal, or equal with each ``...`` of ``expected`` standing for any text."""
    if "..." not in expected:
        return expected == actual
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """Exact match, where a line ``...`` stands for any lines and ``...`` in a line for any text."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head.strip() == "...":
        return any(output_matches(rest, actual[k:]) for k in range(len(actual) + 1))
    if not actual:
        return False
    return line_matches(head, actual[0]) and output_matches(rest, actual[1:])


def _trim(lines: list[str]) -> list[str]:
    lines = [line.rstrip() for line in lines]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def write_my_digit(folder: Path, data: Path) -> None:
    """MNIST test image 0 (a 7) as a user would draw it: dark ink on white, 112x112."""
    from PIL import Image

    from cnnlab.data import load_dataset

    test = load_dataset("mnist", "test", data_dir=data)
    pixels = 255 - test.images[0, 0].numpy()
    Image.fromarray(pixels).resize((112, 112), Image.Resampling.BILINEAR).save(
        folder / "my_digit.png"
    )


# Most of an example's time is Python importing torch. A helper process imports cnnlab's
# modules once and forks a fresh child for each command, which then runs exactly what
# ``python -m cnnlab ARGV`` runs (runpy, the same argv, stdin, stdout and stderr buffering).
# The helper never runs a torch operation, so each child starts as a new interpreter would.
FORK_SERVER = r"""
import io, json, os, runpy, signal, sys, traceback
import numpy, torch, PIL.Image, matplotlib, scipy.ndimage, scipy.signal  # noqa: F401
import cnnlab.cli, cnnlab.engine, cnnlab.predict, cnnlab.viz  # noqa: F401
proto_in, proto_out = sys.stdin.buffer, os.fdopen(os.dup(1), "w", buffering=1)
for line in proto_in:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(job["cwd"])
            out = os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0), os.dup2(out, 1), os.dup2(out, 2)
            sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False))
            sys.stderr = io.TextIOWrapper(
                io.FileIO(2, "w", closefd=False), errors="backslashreplace", line_buffering=True
            )
            signal.signal(signal.SIGINT, signal.default_int_handler)
            sys.argv = ["-m", *job["argv"]]
            code = 0
            try:
                runpy.run_module("cnnlab", run_name="__main__", alter_sys=True)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if exc.code is not None and not isinstance(exc.code, int):
                    print(exc.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush(), sys.stderr.flush()
        finally:
            os._exit(locals().get("code", 1))
    proto_out.write(json.dumps({"pid": pid}) + "\n")
    _, status = os.waitpid(pid, 0)
    proto_out.write(json.dumps({"status": os.waitstatus_to_exitcode(status)}) + "\n")
"""


class ForkServer:
    """``python -m cnnlab ARGV`` in a fresh process forked from one that imported cnnlab once."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env, self.folder, self.count = env, folder, 0
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        self.count += 1
        out = self.folder / f"output-{self.count}.txt"
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd), "out": str(out)}) + "\n")
        self.proc.stdin.flush()
        pid = self._read()["pid"]
        timer = threading.Timer(COMMAND_TIMEOUT, os.kill, (pid, signal.SIGKILL))
        timer.start()
        try:
            status = self._read()["status"]
        finally:
            timer.cancel()
        return subprocess.CompletedProcess(argv, status, out.read_text(errors="replace"))

    def _read(self) -> dict[str, int]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server stopped (exit status {self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


class CommandCache:
    """Runs each example once per session when an identical one already ran on identical inputs.

    Several pages repeat a command (``train --recipe fast``, ``export ... --format onnx``,
    ``summary tutorial_cnn``). A command is replayed instead of run again when its arguments
    are the same and every path it names (file or folder, including output paths that do not
    exist yet) has the same contents as the first time; a ``train`` command also counts the
    runs folder it writes into. Replaying copies the files the first run created or changed
    into the page's folder and returns its output, so the folder ends exactly as running the
    command there would leave it.
    """

    def __init__(self, store: Path) -> None:
        self.store = store
        self.servers: dict[tuple[tuple[str, str], ...], ForkServer] = {}
        self.done: dict[str, tuple[subprocess.CompletedProcess[str], Path, list[str]]] = {}
        self.replayed: list[str] = []

    @staticmethod
    def _files(cwd: Path) -> dict[str, tuple[int, int]]:
        return {
            str(f.relative_to(cwd)): (f.stat().st_mtime_ns, f.stat().st_size)
            for f in cwd.rglob("*")
            if f.is_file()
        }

    @staticmethod
    def _key(argv: list[str], cwd: Path) -> str:
        h = hashlib.sha256("\0".join(argv).encode())
        named = [a.split("=", 1)[-1] for a in argv]
        if argv[:1] == ["train"]:
            runs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--runs-dir"]
            named += runs or ["runs"]
        for name in named:
            path = cwd / name
            if not name or os.path.isabs(name) or ".." in Path(name).parts or not path.exists():
                h.update(b"\0absent:" + name.encode())
                continue
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            h.update(b"\0present:" + name.encode())
            for f in files:
                if f.is_file():
                    h.update(str(f.relative_to(cwd)).encode() + b"\0" + f.read_bytes())
        return h.hexdigest()

    def run(self, argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
        key = self._key(argv, cwd)
        if key in self.done:
            result, saved, removed = self.done[key]
            for f in saved.rglob("*"):
                if f.is_file():
                    target = cwd / f.relative_to(saved)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, target)
            for name in removed:
                (cwd / name).unlink(missing_ok=True)
            self.replayed.append(" ".join(argv))
            return result
        before = self._files(cwd)
        env_key = tuple(sorted(env.items()))
        if env_key not in self.servers:
            self.servers[env_key] = ForkServer(env, self.store)
        result = self.servers[env_key].run(argv, cwd)
        after = self._files(cwd)
        saved = self.store / f"{len(self.done)}"
        saved.mkdir(parents=True)
        for name, stamp in after.items():
            if before.get(name) != stamp:
                (saved / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(cwd / name, saved / name)
        self.done[key] = (result, saved, [name for name in before if name not in after])
        return result


@pytest.fixture(scope="session")
def command_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CommandCache]:
    cache = CommandCache(tmp_path_factory.mktemp("command-cache"))
    yield cache
    for server in cache.servers.values():
        server.close()


PAGES = doc_pages()


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_console_examples_run(
    page: Path, tmp_path: Path, shared_data: Path, command_cache: CommandCache
) -> None:
    examples = console_examples(page.read_text(encoding="utf-8"))
    runnable = [e for e in examples if e.command.startswith("cnnlab ")]
    if not runnable:
        return
    env = dict(os.environ, CNNLAB_DATA=str(shared_data), TQDM_DISABLE="1", COLUMNS="100")
    env.pop("PYTEST_CURRENT_TEST", None)  # the same for every page: one fork server serves all
    # Idle OpenMP threads sleep instead of spinning: on a machine shared with other jobs,
    # spinning threads slow every example down many times over (the output is the same).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    write_my_digit(tmp_path, shared_data)
    name = _page_id(page)
    for example in runnable:
        argv = shlex.split(example.command, comments=True)[1:]
        assert not {"|", ">", "<", "&&", ";", "&"} & set(argv), (
            f"{name}:{example.line}: shell syntax in a console example: {example.command}"
        )
        result = command_cache.run(argv, tmp_path, env)
        actual = _trim(result.stdout.splitlines())
        expected = _trim(example.expected)
        where = f"{name}:{example.line}: $ {example.command}"
        if example.status_only:
            assert result.returncode == example.status, (
                f"{where}\nexit status {result.returncode}, expected {example.status}\n"
                + "\n".join(actual)
            )
            continue
        status = 2 if any(line.startswith("cnnlab: error:") for line in expected) else 0
        assert result.returncode == status, (
            f"{where}\nexit status {result.returncode}, expected {status}\n" + "\n".join(actual)
        )
        assert output_matches(expected, actual), (
            f"{where}\n--- expected\n" + "\n".join(expected) + "\n--- got\n" + "\n".join(actual)
        )


def image_links(text: str) -> list[str]:
    return IMAGE_MD.findall(text) + IMAGE_HTML.findall(text)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_image_links_resolve(page: Path) -> None:
    missing = []
    for link in image_links(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", link):  # http:, data:
            missing.append(f"{link} (pictures must be files in the repository)")
            continue
        target = (page.parent / link.split("#")[0]).resolve()
        if not target.is_file() or ROOT not in target.parents:
            missing.append(link)
    assert not missing, f"{_page_id(page)}: image links that do not resolve: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_no_work_log_language(page: Path) -> None:
    hits = [
        f"{n}: {line.strip()}"
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if WORK_LOG.search(line)
    ]
    assert not hits, f"{_page_id(page)}: issue numbers or work-log phrases:\n" + "\n".join(hits)


def test_readme_is_a_front_door() -> None:
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; keep it under {README_MAX_LINES}"


def test_collector_reads_blocks_and_patterns() -> None:
    page = "\n".join(
        [
            "text",
            "<!-- check: exit-status 2 -->",
            "```console",
            "$ cnnlab a \\",
            "    --b 1",
            "out",
            "```",
            "```console",
            "$ cnnlab c   # comment",
            "x ... y",
            "...",
            "z",
            "```",
            "```sh",
            "$ cnnlab not-run",
            "```",
        ]
    )
    first, second = console_examples(page)
    assert (first.command, first.expected, first.status_only, first.status) == (
        "cnnlab a --b 1",
        ["out"],
        True,
        2,
    )
    assert (second.command, second.expected, second.status_only) == (
        "cnnlab c   # comment",
        ["x ... y", "...", "z"],
        False,
    )
    assert output_matches(second.expected, ["x 1 2 y", "z"])
    assert output_matches(second.expected, ["x  y", "a", "b", "z"])
    assert not output_matches(second.expected, ["x 1 2 y", "z", "extra"])
    assert not output_matches(second.expected, ["x 1 2", "z"])
    assert not output_matches(["a"], ["b"])
    assert image_links('![a](img/x.png) <img src="y.png" width=3>') == ["img/x.png", "y.png"]


def test_fork_server_runs_what_python_m_runs(tmp_path: Path, command_cache: CommandCache) -> None:
    env = dict(os.environ, COLUMNS="100")
    env.pop("PYTEST_CURRENT_TEST", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    for argv in (["conv1d", "1,2,3", "--kernel", "1,1"], ["summary", "resnet"], ["nope"]):
        direct = subprocess.run(
            [sys.executable, "-m", "cnnlab", *argv],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        forked = command_cache.run(argv, tmp_path, env)
        assert (forked.returncode, forked.stdout) == (direct.returncode, direct.stdout), argv


def test_command_cache_replays_files(tmp_path: Path, command_cache: CommandCache) -> None:
    env = dict(os.environ)
    env.pop("PYTEST_CURRENT_TEST", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    argv = ["pool", "china", "--kind", "max", "--size", "4", "--out", "pooled.png"]
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    ran = command_cache.run(argv, first, env)
    replayed = len(command_cache.replayed)
    again = command_cache.run(argv, second, env)
    assert len(command_cache.replayed) == replayed + 1
    assert again.stdout == ran.stdout and ran.returncode == 0
    assert (second / "pooled.png").read_bytes() == (first / "pooled.png").read_bytes()
    (second / "pooled.png").write_bytes(b"changed")  # a named file differs: runs again
    command_cache.run(argv, second, env)
    assert len(command_cache.replayed) == replayed + 1
