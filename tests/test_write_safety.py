"""`migrate --write` under faults and planted files: killed at any step, the next command (any
of them) rolls the tree back byte for byte; nothing is written outside the root or `--out`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import FIXTURES
from untangle.cli import main

APP = FIXTURES / "article" / "order_chain" / "module_client"
STRACE = shutil.which("strace")
UNTANGLE = [sys.executable, "-m", "untangle"]
needs_strace = pytest.mark.skipif(STRACE is None, reason="strace is not installed")
KILLED = (-9, 128 + 9)  # strace re-raises the tracee's SIGKILL on itself (or exits 137)


def _tree(folder: Path) -> dict[str, bytes | str]:
    """Every file's bytes, every directory and symlink: the tree byte for byte."""
    tree: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        if path.is_symlink():
            tree[relative] = f"symlink → {os.readlink(path)}"
        elif path.is_dir():
            tree[relative] = "directory"
        else:
            tree[relative] = path.read_bytes()
    return tree


def _env() -> dict[str, str]:
    # no __pycache__ written into the fixture's copy, no facts cache: the tree stays comparable
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def _killed_at(syscalls: str, when: int, command: list[str], cwd: Path) -> bool:
    """Run `command` under strace, SIGKILLed at the `when`-th call of `syscalls` (children that
    exec something else, the validators, are left alone); whether it was killed."""
    assert STRACE is not None
    traced = [STRACE, "-f", "-b", "execve", "-o", os.devnull]
    inject = f"inject={syscalls}:signal=KILL:when={when}"
    done = subprocess.run(
        [*traced, "-e", inject, *command], cwd=cwd, env=_env(), capture_output=True, text=True
    )
    assert done.returncode in (0, *KILLED), done.stderr
    return done.returncode in KILLED


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes | str]:
    """The app as an uninterrupted `migrate --write` leaves it."""
    copy = tmp_path_factory.mktemp("reference") / "app"
    shutil.copytree(APP, copy, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [*UNTANGLE, "migrate", ".", "--write", "--no-cache"], cwd=copy, env=_env(), text=True
    )
    assert done.returncode == 0
    return _tree(copy)


NEXT_COMMANDS = [
    ["scan", "."],
    ["plan", ".", "--detail", "none"],
    ["migrate", ".", "--check"],
]


@needs_strace
def test_a_kill_at_any_rename_of_migrate_write_is_rolled_back_by_the_next_command(
    tmp_path: Path, migrated: dict[str, bytes | str]
) -> None:
    """The issue's reproduction, at every rename until the write runs to its end."""
    app = tmp_path / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    original = _tree(app)
    write = [*UNTANGLE, "migrate", ".", "--write", "--no-cache"]
    kills = 0
    while _killed_at("rename,renameat,renameat2", kills + 1, write, app):
        assert _tree(app) != original or kills == 0  # killed mid-way: something to recover
        command = NEXT_COMMANDS[kills % len(NEXT_COMMANDS)]
        kills += 1
        after = subprocess.run(
            [*UNTANGLE, *command, "--no-cache"], cwd=app, env=_env(), capture_output=True, text=True
        )
        assert "interrupted `migrate --write`" in after.stderr, (command, after.stderr)
        assert _tree(app) == original, f"after a kill at rename {kills} and {command}"
        assert "nothing to migrate" not in after.stderr
    assert kills >= 4  # the journal's manifest, then the handler, the definition, the template
    assert _tree(app) == migrated


DRIVER = """
import json, sys
from untangle.journal import Replacement, write_files
spec = json.load(open(sys.argv[1]))
write_files(spec["root"], [
    Replacement(p, None if o is None else o.encode("latin-1"), n.encode("latin-1"))
    for p, o, n in spec["changes"]
])
"""

JOURNAL_STEPS = [
    pytest.param("fsync", id="fsync-of-each-backup-manifest-temp-and-directory"),
    pytest.param("rename,renameat,renameat2", id="rename-of-the-manifest-and-each-swap"),
    pytest.param("mkdir,mkdirat", id="mkdir-of-the-journal-and-new-directories"),
    pytest.param("chmod,fchmod,fchmodat", id="chmod-of-each-temporary-file"),
    pytest.param("unlink,unlinkat", id="unlink-of-the-manifest-and-backups"),
    pytest.param("rmdir", id="rmdir-of-the-journal"),
]


def _project(root: Path) -> list[tuple[str, str | None, str]]:
    """A small project and the changes a write makes to it: files replaced (one with CRLF and
    bytes that are not UTF-8, one read-only to others), files created in new directories."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_bytes(b"def handler(event, context):\r\n    return 1\r\n")
    (root / "template.yaml").write_bytes(b"Resources: {}\n# caf\xe9\n")
    os.chmod(root / "template.yaml", 0o640)
    return [
        (str(root / "src" / "app.py"), "def handler(event, context):\r\n    return 1\r\n", "x=2\n"),
        (str(root / "template.yaml"), "Resources: {}\n# caf\xe9\n", "Resources: {A: 1}\n"),
        (str(root / "statemachine" / "deep" / "X.asl.json"), None, "{}\n"),
        (str(root / "NOTES.txt"), None, "new\n"),
    ]


def _write_spec(root: Path, spec: Path) -> list[tuple[str, str | None, str]]:
    import json

    changes = _project(root)
    spec.write_text(json.dumps({"root": str(root), "changes": changes}))
    return changes


@needs_strace
@pytest.mark.parametrize("syscalls", JOURNAL_STEPS)
def test_a_kill_at_any_step_of_the_journal_is_rolled_back(tmp_path: Path, syscalls: str) -> None:
    reference = tmp_path / "reference"
    _write_spec(reference, tmp_path / "reference.json")
    subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path / "reference.json")], check=True)
    written = _tree(reference)
    root = tmp_path / "project"
    spec = tmp_path / "spec.json"
    changes = _write_spec(root, spec)
    original = _tree(root)
    assert written != original
    commands = [  # the next run of any command on the root
        ["scan", str(root), "--no-cache"],
        ["plan", str(root), "--no-cache"],
        ["migrate", str(root), "--no-cache"],
        ["verify", str(root), "--event", str(tmp_path / "missing.json")],
    ]
    kills = 0
    while _killed_at(syscalls, kills + 1, [sys.executable, "-c", DRIVER, str(spec)], tmp_path):
        command = commands[kills % len(commands)]
        kills += 1
        result = CliRunner().invoke(main, command)
        where = f"after a kill at {syscalls} #{kills}: {result.stderr}"
        if "rolled back an interrupted `migrate --write`" in result.stderr:
            assert _tree(root) == original, where  # a manifest: killed before the commit
        else:  # killed before the manifest was whole, or after the commit
            assert _tree(root) in (original, written), where
        shutil.rmtree(root)  # the next kill starts from the original again
        _write_spec(root, spec)
    assert kills >= 1
    finished = _tree(root)
    assert finished == written
    assert not (root / ".untangle-journal").exists()
    for path, _, new in changes:
        assert finished[str(Path(path).relative_to(root))] == new.encode("latin-1")
    assert os.stat(root / "template.yaml").st_mode & 0o777 == 0o640


@needs_strace
def test_a_kill_during_the_roll_back_is_finished_by_the_next_command(tmp_path: Path) -> None:
    root = tmp_path / "project"
    spec = tmp_path / "spec.json"
    _write_spec(root, spec)
    original = _tree(root)
    recovering = [*UNTANGLE, "scan", str(root), "--no-cache"]
    writer = [sys.executable, "-c", DRIVER, str(spec)]
    kills = 0
    for syscalls in ("rename,renameat,renameat2", "unlink,unlinkat", "rmdir"):
        when = 1
        while True:
            # killed after its last swap, at the commit: every file is new, the journal whole
            assert _killed_at("unlink,unlinkat", 1, writer, tmp_path)
            assert (root / "NOTES.txt").exists() and (root / ".untangle-journal").exists()
            if not _killed_at(syscalls, when, recovering, tmp_path):
                assert _tree(root) == original, syscalls
                break
            kills += 1
            when += 1
            subprocess.run(recovering, env=_env(), capture_output=True, check=False)
            assert _tree(root) == original, f"after a kill at {syscalls} #{when - 1} of recovery"
    assert kills >= 5


# --- symlinks planted in the tree ---------------------------------------------------------------


def run_migrate(folder: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["migrate", str(folder), "--no-cache", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    "planted",
    [
        pytest.param("orchestrator/.app.py.untangle-tmp", id="at-the-handler-temp-name"),
        pytest.param(".template.yaml.untangle-tmp", id="at-the-template-temp-name"),
        pytest.param(
            "statemachine/.OrderProcessorWorkflow.asl.json.untangle-tmp",
            id="at-the-definition-temp-name",
        ),
    ],
)
def test_a_symlink_planted_at_a_temp_name_is_never_followed(tmp_path: Path, planted: str) -> None:
    app = tmp_path / "project" / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    victim = tmp_path / "outside" / "victim"
    victim.parent.mkdir()
    victim.write_text("not yours\n")
    link = app / planted
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(os.path.relpath(victim, link.parent))
    code, err = run_migrate(app, "--write")
    assert code == 0, err
    assert victim.read_text() == "not yours\n"
    assert link.is_symlink()  # left as it was: not ours
    for written in ("orchestrator/app.py", "template.yaml"):
        assert not (app / written).is_symlink()
    assert "StateMachine" in (app / "template.yaml").read_text()


def _link(app: Path, name: str, target: Path) -> None:
    path = app / name
    if path.exists():
        shutil.move(path, target)
    path.symlink_to(os.path.relpath(target, path.parent))


@pytest.mark.parametrize(
    ("name", "outside", "code"),
    [
        pytest.param("orchestrator/app.py", True, 2, id="handler-links-out"),
        pytest.param("template.yaml", True, 2, id="template-links-out"),
        pytest.param("statemachine", True, 1, id="definition-folder-links-out"),
        pytest.param("orchestrator/app.py", False, 2, id="handler-also-reached-by-a-link"),
        pytest.param("statemachine", False, 0, id="near-miss-definition-folder-links-inside"),
    ],
)
def test_a_symlink_leading_out_of_the_root_is_refused(
    tmp_path: Path, name: str, outside: bool, code: int
) -> None:
    app = tmp_path / "project" / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    elsewhere = tmp_path / "outside" if outside else app / "shared"
    elsewhere.mkdir(parents=True)
    target = elsewhere / Path(name).name
    if name == "statemachine":
        target.mkdir()
    _link(app, name, target)
    before_outside = _tree(tmp_path / "outside") if outside else None
    before = _tree(app)
    returned, err = run_migrate(app, "--write")
    assert returned == code, err
    if outside:
        assert "outside the project root" in err
        assert _tree(tmp_path / "outside") == before_outside
        assert _tree(app) == before
    elif code:  # two handlers, one file: written once each would lose one of them
        assert "another change writes too" in err
        assert _tree(app) == before
    else:
        assert (app / name).is_symlink()  # written through, the link kept
        assert _tree(app) != before


# --- plan --out stays in its folder -------------------------------------------------------------

HOSTILE_IDS = [
    pytest.param('"../../../escaped"', id="dot-dot"),
    pytest.param('"{tmp}/absolute"', id="absolute"),  # {tmp}: this test's folder
    pytest.param('".."', id="only-dots"),
    pytest.param('"a\\0b"', id="nul"),
    pytest.param('"' + "L" * 1000 + '"', id="very-long"),
    pytest.param('"sub/dir"', id="slash"),
    pytest.param('".hidden"', id="hidden"),
]


def _plan_project(root: Path, logical_id: str) -> None:
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text(
        "import boto3\nlam = boto3.client('lambda')\n"
        "def handler(event, context):\n    lam.invoke(FunctionName='a')\n"
    )
    (root / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n"
        f"  {logical_id}:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      CodeUri: src/\n      Handler: app.handler\n      Runtime: python3.12\n"
    )


@pytest.mark.parametrize("logical_id", HOSTILE_IDS)
def test_plan_out_stays_in_its_folder_whatever_the_name(tmp_path: Path, logical_id: str) -> None:
    project = tmp_path / "deep" / "er" / "project"
    _plan_project(project, logical_id.replace("{tmp}", str(tmp_path)))
    before = _tree(tmp_path)
    out, diagrams = project / "out", project / "diagrams"
    result = CliRunner().invoke(
        main,
        ["plan", str(project), "--no-cache", "--out", str(out), "--diagram-out", str(diagrams)],
    )
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    after = _tree(tmp_path)
    new = sorted(set(after) - set(before))
    rel = "deep/er/project"
    assert [p for p in new if not p.startswith((f"{rel}/out", f"{rel}/diagrams"))] == []
    files = [p for p in new if isinstance(after[p], bytes)]
    assert [os.path.dirname(p) for p in files] == [f"{rel}/diagrams", f"{rel}/out"]
    assert all(len(os.path.basename(p).encode()) < 255 for p in new)


def test_plan_out_keeps_a_plain_name(tmp_path: Path) -> None:
    """The near miss: an ordinary logical id is the file's name, unchanged."""
    project = tmp_path / "project"
    _plan_project(project, "OrderFunction")
    result = CliRunner().invoke(main, ["plan", str(project), "--no-cache", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "OrderWorkflow.asl.json").is_file()


def test_plan_out_replaces_a_planted_symlink_instead_of_following_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    _plan_project(project, "OrderFunction")
    victim = tmp_path / "victim"
    victim.write_text("not yours\n")
    out = project / "out"
    out.mkdir()
    (out / "OrderWorkflow.asl.json").symlink_to(victim)
    result = CliRunner().invoke(main, ["plan", str(project), "--no-cache", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert victim.read_text() == "not yours\n"
    assert not (out / "OrderWorkflow.asl.json").is_symlink()


# --- an existing machine whose definition file is YAML ------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "definition", "code", "message"),
    [
        pytest.param(
            "existing.asl.yaml",
            "StartAt: Done\nStates:\n  Done:\n    Type: Pass\n    End: true\n",
            0,
            "wrote 3 file(s)",
            id="yaml",
        ),
        pytest.param(
            "existing.asl.json",
            '{"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}}\n',
            0,
            "wrote 3 file(s)",
            id="near-miss-json",
        ),
        pytest.param(
            "existing.asl.yaml", "StartAt: [\n", 2, "neither JSON nor YAML", id="broken-yaml"
        ),
        pytest.param("existing.asl.yaml", "- a list\n", 2, "not a mapping", id="not-a-mapping"),
    ],
)
def test_an_existing_machine_with_a_definition_file(
    tmp_path: Path, file_name: str, definition: str, code: int, message: str
) -> None:
    app = tmp_path / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    (app / "statemachine").mkdir()
    (app / "statemachine" / file_name).write_text(definition)
    template = app / "template.yaml"
    template.write_text(
        template.read_text().replace(
            "Resources:\n",
            "Resources:\n  ExistingStateMachine:\n    Type: AWS::Serverless::StateMachine\n"
            f"    Properties:\n      DefinitionUri: statemachine/{file_name}\n\n",
            1,
        )
    )
    before = _tree(app)
    returned, err = run_migrate(app, "--write")
    assert returned == code, err
    assert message in err
    assert (app / "statemachine" / file_name).read_text() == definition
    if code:
        assert _tree(app) == before


# --- the journal itself: edited since the crash, planted, malformed -----------------------------


@needs_strace
def test_a_file_edited_after_the_crash_is_left_alone_and_named(tmp_path: Path) -> None:
    root = tmp_path / "project"
    spec = tmp_path / "spec.json"
    _write_spec(root, spec)
    # killed at its 3rd rename: the manifest and src/app.py are in, template.yaml is not
    assert _killed_at(
        "rename,renameat,renameat2", 3, [sys.executable, "-c", DRIVER, str(spec)], root
    )
    assert (root / "src" / "app.py").read_bytes() == b"x=2\n"
    (root / "src" / "app.py").write_text("edited by hand\n")
    result = CliRunner().invoke(main, ["scan", str(root), "--no-cache"])
    assert result.exit_code == 2
    assert "src/app.py changed since" in result.stderr
    assert (root / "src" / "app.py").read_text() == "edited by hand\n"
    assert (root / ".untangle-journal" / "0.old").read_bytes().startswith(b"def handler")
    assert (root / "template.yaml").read_bytes() == b"Resources: {}\n# caf\xe9\n"


def _sha(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()


def _planted_journal(root: Path, manifest: object, backups: dict[str, bytes]) -> None:
    import json

    journal = root / ".untangle-journal"
    journal.mkdir(parents=True)
    for name, content in backups.items():
        (journal / name).write_bytes(content)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (journal / "manifest.json").write_text(text)


def _entry(path: str, old: bytes | None, new: bytes, backup: str | None) -> dict[str, object]:
    return {
        "path": path,
        "old_sha256": None if old is None else _sha(old),
        "new_sha256": _sha(new),
        "backup": backup,
    }


FORMAT = "untangle-journal/1"
VICTIM = b"not yours\n"


@pytest.mark.parametrize(
    ("manifest", "code", "message"),
    [
        pytest.param(
            {
                "format": FORMAT,
                "entries": [_entry("../outside/victim", b"x", VICTIM, "0.old")],
                "created_directories": [],
            },
            2,
            "cannot be rolled back: ../outside/victim",
            id="entry-leads-out",
        ),
        pytest.param(
            {
                "format": FORMAT,
                "entries": [_entry("src/app.py", b"x", b"app\n", "../../outside/victim")],
                "created_directories": [],
            },
            2,
            "not a journal untangle wrote",
            id="backup-read-from-outside",
        ),
        pytest.param(
            {"format": FORMAT, "entries": [], "created_directories": ["../outside/empty"]},
            0,
            "rolled back",
            id="created-directory-outside",
        ),
        pytest.param("{", 2, "not a journal untangle wrote", id="not-json"),
        pytest.param({"format": FORMAT}, 2, "not a journal untangle wrote", id="no-entries"),
        pytest.param(
            {
                "format": FORMAT,
                "entries": [_entry("/etc/passwd", None, b"x", None)],
                "created_directories": [],
            },
            2,
            "not a journal untangle wrote",
            id="absolute-path",
        ),
        pytest.param(
            {
                "format": FORMAT,
                "entries": [_entry("src/app.py", b"old app\n", b"app\n", "0.old")],
                "created_directories": [],
            },
            0,
            "1 file(s) restored",
            id="near-miss-a-journal-as-untangle-writes-it",
        ),
    ],
)
def test_a_planted_journal_never_reaches_outside_the_root(
    tmp_path: Path, manifest: object, code: int, message: str
) -> None:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_bytes(b"app\n")
    outside = tmp_path / "outside"
    (outside / "empty").mkdir(parents=True)
    (outside / "victim").write_bytes(VICTIM)
    _planted_journal(root, manifest, {"0.old": b"old app\n"})
    result = CliRunner().invoke(main, ["scan", str(root), "--no-cache"])
    assert "Traceback" not in result.stderr and not isinstance(result.exception, Exception)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert (outside / "victim").read_bytes() == VICTIM and (outside / "empty").is_dir()
    if code == 0:
        assert not (root / ".untangle-journal").exists()
    if "restored" in message:
        assert (root / "src" / "app.py").read_bytes() == b"old app\n"


@pytest.mark.parametrize("kind", ["symlink", "file"])
def test_a_journal_name_that_is_not_a_directory_is_ignored(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_bytes(b"x = 1\n")
    elsewhere = tmp_path / "elsewhere"
    _planted_journal(
        elsewhere,
        {
            "format": FORMAT,
            "entries": [_entry("victim", b"v", VICTIM, None)],
            "created_directories": [],
        },
        {},
    )
    (elsewhere / "victim").write_bytes(VICTIM)
    if kind == "symlink":
        (root / ".untangle-journal").symlink_to(elsewhere / ".untangle-journal")
    else:
        (root / ".untangle-journal").write_text("{}")
    result = CliRunner().invoke(main, ["scan", str(root), "--no-cache"])
    assert result.exit_code == 0, result.stderr
    assert "interrupted" not in result.stderr
    assert (elsewhere / "victim").read_bytes() == VICTIM
    assert (elsewhere / ".untangle-journal" / "manifest.json").exists()
