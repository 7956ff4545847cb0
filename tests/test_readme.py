"""Every command the README shows runs as shown, and prints what the README says it prints.

- A ```text block starting with `$ untangle …` is a transcript: each `$` command is run and its
  stdout then stderr must be the lines below it (a line `…` stands for any lines, `…` inside a
  line for any text).
- A ```diff block is the stdout of the `untangle …` command named in backticks just before it.
- Every line of a ```sh block (and of a plain ``` block) is a command: its `untangle` parts run
  (`&&` chains in order, `> FILE` written) and must exit 0; the install and test commands
  (`pip`, `npm`, `python -m pytest`) are each checked by the test `INSTALLS` names.

Each block runs in a fresh folder holding `fixtures/` (the repository's) and `app/`: a copy of
an article app committed to git, so `--original HEAD` has a HEAD; a block may need its own set-up
(`SETUPS`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import FIXTURES, ROOT
from untangle.cli import main

FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.S | re.M)
ELISION = "\u2026"

# install and test commands, and the test that checks each
INSTALLS = {
    "pip install .": "tests/test_install.py (a fresh venv installs it and runs `untangle`)",
    "pip install '.[test,dev]'": ".ci/run (installs the same extras)",
    "npm install --prefix .untangle-node asl-validator@4.0.0 mermaid@11.12.2 jsdom@26.1.0": (
        ".ci/run (installs the same packages); tests/test_diagram.py names them"
    ),
    "python -m pytest": ".ci/run",
    "pip install 'untangle-lambda[validate]'": "tests/test_install.py (the [validate] extra)",
    "npm install -g asl-validator@4.0.0": "tests/test_install.py (a global install, on PATH)",
    "pip install 'untangle-lambda[verify]'": "tests/test_install.py (the [verify] extra)",
}


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    line: int
    before: str  # the paragraph just before the block

    @property
    def id(self) -> str:
        first = self.body.splitlines()[0] if self.body.strip() else ""
        return f"README:{self.line}:{first[:40]}"


def _blocks() -> list[Block]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n\n", 1)[-1]
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(match["lang"], match["body"], line, before))
    return found


def _command_lines(block: Block) -> list[str]:
    lines = []
    for raw in block.body.splitlines():
        line = re.sub(r"\s+#\s.*$", "", raw).strip()
        if line:
            lines.append(line)
    return lines


def _transcript(block: Block) -> list[tuple[str, str]]:
    """`$ command` lines and the output below each."""
    pairs: list[tuple[str, str]] = []
    for line in block.body.splitlines(keepends=True):
        if line.startswith("$ "):
            pairs.append((line[2:].rstrip("\n"), ""))
        else:
            command, output = pairs[-1]
            pairs[-1] = (command, output + line)
    return pairs


def _matches(expected: str, actual: str) -> bool:
    pattern = ""
    for line in expected.splitlines(keepends=True):
        if line.rstrip("\n") == ELISION:
            pattern += r"(?:.*\n)*?"
        else:
            pattern += ".*?".join(re.escape(part) for part in line.split(ELISION))
    return re.fullmatch(pattern, actual) is not None


# --- the folder each block runs in ----------------------------------------------------------


def _git(app: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=readme", "-c", "user.email=readme@example.com", *args],
        cwd=app,
        check=True,
        capture_output=True,
    )


def _app(folder: Path, fixture: str) -> Path:
    app = folder / "app"
    shutil.copytree(FIXTURES / "article" / fixture, app)
    _git(app, "init", "-q")
    _git(app, "add", "-A")
    _git(app, "commit", "-q", "-m", "the hand-written orchestrator")
    return app


def _swapped_choice_targets(folder: Path) -> None:
    """What the mismatch example says: after `migrate --write`, the targets of the written
    machine's first two Choice rules were swapped."""
    shutil.rmtree(folder / "app")
    app = _app(folder, "order_size_choice/module_client")
    result = CliRunner().invoke(main, ["migrate", "app", "--write"])
    assert result.exit_code == 0, result.output
    path = app / "statemachine" / "OrderRouterWorkflow.asl.json"
    machine = json.loads(path.read_text())
    rules = machine["States"]["CheckOrderTotal"]["Choices"]
    rules[0]["Next"], rules[1]["Next"] = rules[1]["Next"], rules[0]["Next"]
    path.write_text(json.dumps(machine, indent=2))


# the exit code a command shows when it is not 0 (the README says why beside it)
EXIT_CODES = {"untangle migrate app/ --check": 1}  # "exit 1 when there is work left"

SETUPS: dict[str, Callable[[Path], None]] = {
    "untangle verify app --original HEAD": _swapped_choice_targets,
}


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Path]:
    """Makes a new folder to run in (and goes there): each line of a block runs on its own,
    as the README shows alternatives."""
    # asl-validator as the repository's tests install it (else it is named as skipped)
    node = ROOT / ".untangle-node"
    if (node / "node_modules" / "asl-validator").is_dir():
        monkeypatch.setenv("UNTANGLE_ASL_VALIDATOR_DIR", str(node))
    made: list[Path] = []

    def make() -> Path:
        folder = tmp_path / f"run{len(made)}"
        folder.mkdir()
        (folder / "fixtures").symlink_to(FIXTURES, target_is_directory=True)
        _app(folder, "order_chain/helper_module")
        monkeypatch.chdir(folder)
        made.append(folder)
        return folder

    return make


def _run(command: str) -> tuple[int, str, str]:
    """One `untangle …` command (a `> FILE` redirect writes its stdout there)."""
    args = shlex.split(command)
    assert args[0] == "untangle", command
    target = None
    if ">" in args:
        at = args.index(">")
        args, target = args[:at], args[at + 1]
    result = CliRunner().invoke(main, args[1:])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    if target is not None:
        Path(target).write_text(result.stdout)
        return result.exit_code, "", result.stderr
    return result.exit_code, result.stdout, result.stderr


def _parts(line: str) -> list[str]:
    return [part.strip() for part in line.split(" && ")]


# --- the tests --------------------------------------------------------------------------------

BLOCKS = _blocks()
TRANSCRIPTS = [b for b in BLOCKS if b.lang in ("text", "") and b.body.startswith("$ ")]
COMMANDS = [b for b in BLOCKS if b.lang in ("sh", "") and not b.body.startswith("$ ")]
DIFFS = [b for b in BLOCKS if b.lang == "diff"]


def test_the_readme_has_the_blocks_these_tests_read() -> None:
    assert len(TRANSCRIPTS) >= 3 and len(COMMANDS) >= 4 and len(DIFFS) == 1
    # every other block is data (configuration, a hook), not a command
    assert {b.lang for b in BLOCKS} - {"text", "sh", "", "diff"} <= {"toml", "yaml"}
    for block in BLOCKS:
        if block.lang == "text":
            assert block in TRANSCRIPTS, f"README:{block.line}: a text block not a `$` transcript"


@pytest.mark.parametrize("block", TRANSCRIPTS, ids=lambda b: b.id)
def test_transcripts_print_what_they_show(block: Block, fresh: Callable[[], Path]) -> None:
    folder = fresh()
    for command, expected in _transcript(block):
        if command in SETUPS:
            SETUPS[command](folder)
        _, out, err = _run(command)
        assert _matches(expected, out + err), f"$ {command}\n{out}{err}"


@pytest.mark.parametrize("block", COMMANDS, ids=lambda b: b.id)
def test_commands_run_as_shown(block: Block, fresh: Callable[[], Path]) -> None:
    for line in _command_lines(block):
        if "untangle " in line:
            fresh()
        for part in _parts(line):
            if not part.startswith("untangle "):
                assert part in INSTALLS, f"README:{block.line}: no test checks `{part}`"
                continue
            code, out, err = _run(part)
            assert code == EXIT_CODES.get(part, 0), f"{part}\n{out}{err}"
            assert "Traceback" not in err


@pytest.mark.parametrize("block", DIFFS, ids=lambda b: b.id)
def test_the_diff_shown_is_what_migrate_prints(block: Block, fresh: Callable[[], Path]) -> None:
    fresh()
    named = re.findall(r"`(untangle [^`]+)`", block.before)
    assert named, f"README:{block.line}: name the command before the diff"
    code, out, _ = _run(named[-1])
    assert code == 0
    assert out == block.body


@pytest.mark.parametrize(
    ("expected", "actual", "same"),
    [
        pytest.param("a\nb\n", "a\nb\n", True, id="exact"),
        pytest.param("a\nb\n", "a\nc\n", False, id="near-miss-a-line-differs"),
        pytest.param(f"a\n{ELISION}\nz\n", "a\nb\nc\nz\n", True, id="elided-lines"),
        pytest.param(f"a\n{ELISION}\nz\n", "a\nz\n", True, id="elided-nothing"),
        pytest.param(f"a\n{ELISION}\nz\n", "a\nb\n", False, id="near-miss-elision-then-missing"),
        pytest.param(f"x {ELISION} y\n", "x 12 y\n", True, id="elided-text"),
        pytest.param(f"x {ELISION} y\n", "x 1\n2 y\n", False, id="near-miss-text-across-lines"),
    ],
)
def test_elision(expected: str, actual: str, same: bool) -> None:
    assert _matches(expected, actual) == same


def test_every_install_command_is_still_in_the_readme() -> None:
    shown = {part for b in COMMANDS for line in _command_lines(b) for part in _parts(line)}
    assert set(INSTALLS) <= shown, set(INSTALLS) - shown
    assert os.path.exists(ROOT / ".ci" / "run")
