"""`untangle migrate` on copies of the fixture apps: dry run, --write (validated), idempotence,
--check, template merging, hostile names, the project root, and all-or-nothing writes."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.conftest import FIXTURES, ROOT, update_golden  # noqa: F401
from untangle.cli import main
from untangle.sam import cfn_load

GOLDEN = ROOT / "tests" / "golden" / "migrate"
APPS = sorted(p.parent for p in FIXTURES.glob("article/*/*/template.yaml"))


def _app_id(app: Path) -> str:
    return str(app.relative_to(FIXTURES)).replace("/", "--")


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def run(folder: Path, *args: str) -> tuple[int, str, str]:
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(main, ["migrate", ".", "--no-cache", *args])
    finally:
        os.chdir(cwd)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("app", APPS, ids=_app_id)
def test_migrate_app(app: Path, tmp_path: Path, update_golden: bool) -> None:  # noqa: F811
    copy = tmp_path / "app"
    shutil.copytree(app, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = _snapshot(copy)
    code, diff, err = run(copy)
    assert code == 0, err
    assert _snapshot(copy) == before, "a dry run changed the tree"
    assert diff.startswith("--- ") and "+++ b/template.yaml" in diff
    golden = GOLDEN / f"{_app_id(app)}.diff"
    if update_golden:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(diff)
    else:
        assert diff == golden.read_text(), f"{golden.relative_to(ROOT)} changed"

    code, _, err = run(copy, "--write")
    assert code == 0, err  # --write runs every validator first
    assert "wrote" in err
    # idempotent: a second run changes nothing, and --check agrees
    code, again, err = run(copy)
    assert code == 0 and again == "" and "nothing to migrate" in err
    assert run(copy, "--check")[0] == 0
    template = cfn_load((copy / "template.yaml").read_text())
    machines = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::StateMachine"
    ]
    assert machines and all((copy / m["Properties"]["DefinitionUri"]).exists() for m in machines)
    for machine in machines:
        # an explicit statement on exact ARNs: SAM's LambdaInvokePolicy grants `function:NAME*`
        [policy] = machine["Properties"]["Policies"]
        [statement] = policy["Statement"]
        assert statement["Action"] == "lambda:InvokeFunction"
        for resource in statement["Resource"]:
            assert "*" not in str(resource).replace(":*", "")


def test_check_exits_1_when_there_is_work(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "article" / "hello_world" / "module_client", app)
    assert run(app, "--check")[0] == 1


def test_merge_keeps_comments_order_and_other_resources(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "article" / "reminder" / "module_client", app)
    template = app / "template.yaml"
    original = template.read_text().replace(
        "Resources:\n", "# operations: keep this comment\nResources:\n  # and this one\n", 1
    )
    template.write_text(original)
    assert run(app, "--write")[0] == 0
    merged = template.read_text()
    assert "# operations: keep this comment\n" in merged and "  # and this one\n" in merged
    # every original line is still there, in the same order
    remaining = iter(merged.splitlines())
    assert all(any(line == m for m in remaining) for line in original.splitlines())


def test_no_template_creates_one(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import json\nimport boto3\nlam = boto3.client('lambda')\n"
        "def handler(event, context):\n"
        "    r = lam.invoke(FunctionName='worker', Payload=json.dumps(event))\n"
        "    return json.loads(r['Payload'].read())\n"
    )
    assert run(tmp_path, "--write")[0] == 0
    document = cfn_load((tmp_path / "template.yaml").read_text())
    assert any(r["Type"] == "AWS::Serverless::StateMachine" for r in document["Resources"].values())
    assert "_untangle_start(event)" in (tmp_path / "app.py").read_text()


HOSTILE = [
    pytest.param('evil"name', id="quote"),
    pytest.param("a: b", id="colon"),
    pytest.param("line\\nbreak", id="newline"),
    pytest.param('a"""b\\', id="triple-quote-backslash"),
    pytest.param("../../outside", id="dot-dot"),
    pytest.param("${AWS::AccountId}", id="sub-syntax"),
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_function_names_stay_data(tmp_path: Path, name: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text(
        "import boto3\nlam = boto3.client('lambda')\n"
        "def handler(event, context):\n"
        f"    lam.invoke(FunctionName={name!r})\n"
    )
    before = _snapshot(tmp_path)
    code, _, err = run(project, "--write")
    # 1: refused (not a name the policy can grant exactly); 2: a validator refused it
    assert code in (0, 1, 2), err
    if code == 1:
        assert "refusing to grant lambda:InvokeFunction" in err
    outside = {k: v for k, v in _snapshot(tmp_path).items() if not k.startswith("project/")}
    assert outside == {k: v for k, v in before.items() if not k.startswith("project/")}
    if code == 0:
        text = (project / "template.yaml").read_text()
        document = yaml.safe_load(
            text.replace("!Sub", "").replace("!GetAtt", "").replace("!Ref", "")
        )
        assert len(document["Resources"]) == 2  # the machine and its log group, nothing injected
        # every Python file written parses, with nothing but imports, assignments and defs
        import ast

        for path in project.rglob("*.py"):
            module = ast.parse(path.read_text())
            assert all(
                isinstance(n, (ast.Import, ast.ImportFrom, ast.Assign, ast.FunctionDef))
                for n in module.body
            )


def test_failure_mid_write_leaves_the_tree_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "article" / "order_chain" / "module_client", app)
    before = _snapshot(app)
    real_replace = os.replace
    calls = []

    def failing_replace(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full (injected)")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    code, _, err = run(app, "--write")
    assert code == 2 and "nothing was written" in err
    assert _snapshot(app) == before
    assert len(calls) == 2


def test_handler_selection(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "article" / "order_chain" / "module_client", app)
    code, diff, err = run(app, "--handler", "no_such_handler")
    assert code == 2 and diff == ""
    assert err.startswith("untangle: error: no handler named 'no_such_handler'")
    assert "orchestrator.app.lambda_handler" in err and len(err.splitlines()) == 1
    code, diff, _ = run(app, "--handler", "lambda_handler")
    assert code == 0 and "+++ b/orchestrator/app.py" in diff


def test_codemod_runs_from_libcst_tool(tmp_path: Path) -> None:
    """The codemods ship with a libcst config, so `python -m libcst.tool codemod` runs them."""
    import subprocess
    import sys

    target = tmp_path / "app.py"
    shutil.copy(
        FIXTURES / "article" / "hello_world" / "module_client" / "orchestrator" / "app.py", target
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "libcst.tool",
            "codemod",
            "starter.ReplaceHandlerWithStarter",
            str(target),
            "--handler",
            "lambda_handler",
            "--env-var",
            "HELLO_ARN",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    code = target.read_text()
    assert 'os.environ["HELLO_ARN"]' in code and "lambda_client" not in code
    compile(code, str(target), "exec")


def test_inline_properties_are_reported_not_mangled(tmp_path: Path) -> None:
    """A template written in flow style cannot be merged line by line: the workflow is listed
    as not migrated, and nothing is written."""
    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "article" / "hello_world" / "module_client", app)
    template = app / "template.yaml"
    text = template.read_text()
    document = yaml.safe_load(text.replace("!Ref", "").replace("!GetAtt", ""))
    caller = next(
        name
        for name, r in document["Resources"].items()
        if r["Properties"].get("FunctionName") == "hello-caller"
    )
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {caller}:"))
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].startswith("  ") and not lines[i].startswith("   ")
        ),
        len(lines),
    )
    props = document["Resources"][caller]["Properties"]
    inline = ", ".join(f"{k}: {v}" for k, v in props.items() if isinstance(v, (str, int)))
    lines[start:end] = [
        f"  {caller}:\n",
        "    Type: AWS::Serverless::Function\n",
        f"    Properties: {{{inline}}}\n",
        "\n",
    ]
    template.write_text("".join(lines))
    before = _snapshot(app)
    code, _, err = run(app, "--write")
    # the handler left as it was is a finding: exit 1, as plan does
    assert code == 1 and "not migrated" in err and "inline" in err
    assert "nothing migrated: 1 handler refused (reasons above)" in err
    assert "nothing to migrate" not in err
    assert _snapshot(app) == before


INHERITING_APP = {
    "template.yaml": (
        'AWSTemplateFormatVersion: "2010-09-09"\n'
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  ArchiveFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: src/\n"
        "      Handler: archive.app.lambda_handler\n"
        "      Runtime: python3.11\n"
        "      MemorySize: 512\n"
        "      Timeout: 120\n"
        "      Layers:\n"
        "        - !Ref CommonLayer\n"
        "      Environment:\n"
        "        Variables:\n"
        "          BUCKET: !Ref ArchiveBucket\n"
        "      Policies:\n"
        "        - S3CrudPolicy:\n"
        "            BucketName: !Ref ArchiveBucket\n"
        "  ArchiveBucket:\n"
        "    Type: AWS::S3::Bucket\n"
        "  CommonLayer:\n"
        "    Type: AWS::Serverless::LayerVersion\n"
        "    Properties:\n"
        "      ContentUri: layer/\n"
        "  IndexFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      FunctionName: index-object\n"
        "      CodeUri: index/\n"
        "      Handler: app.lambda_handler\n"
        "      Runtime: python3.11\n"
    ),
    "src/archive/__init__.py": "",
    "src/archive/app.py": (
        "import json\nimport os\n\nimport boto3\n\n"
        's3 = boto3.client("s3")\nlam = boto3.client("lambda")\nBUCKET = os.environ["BUCKET"]\n\n\n'
        "def lambda_handler(event, context):\n"
        '    s3.put_object(Bucket=BUCKET, Key=event["key"], Body=json.dumps(event))\n'
        '    lam.invoke(FunctionName="index-object", Payload=json.dumps({"key": event["key"]}))\n'
        '    return {"archived": event["key"]}\n'
    ),
    "index/app.py": "def lambda_handler(event, context):\n    return event\n",
    "layer/python/.keep": "",
}


def test_a_new_function_inherits_what_the_orchestrator_runs_with(tmp_path: Path) -> None:
    """`s3.put_object(...)` runs in a new function: in the orchestrator's module (CodeUri and
    Handler's package), with its runtime, memory, timeout, layers, environment and policies (a
    module-level `os.environ["BUCKET"]` failed at import, and its S3 call had no permission);
    the machine's policy lists only real Lambda functions."""
    import yaml

    from untangle.sam import cfn_load

    for name, text in INHERITING_APP.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    code, _, err = run(tmp_path, "--write")
    assert code == 0, err
    template = cfn_load((tmp_path / "template.yaml").read_text())
    [new] = [
        props
        for logical, resource in template["Resources"].items()
        if logical.startswith("PutObject")
        for props in [resource["Properties"]]
    ]
    assert new["CodeUri"] == "src/"
    assert new["Handler"] == "archive.app.put_object"
    assert (new["Runtime"], new["MemorySize"], new["Timeout"]) == ("python3.11", 512, 120)
    assert new["Layers"] == [{"Ref": "CommonLayer"}]
    assert new["Environment"] == {"Variables": {"BUCKET": {"Ref": "ArchiveBucket"}}}
    assert new["Policies"] == [{"S3CrudPolicy": {"BucketName": {"Ref": "ArchiveBucket"}}}]
    [machine] = [r for r in template["Resources"].values() if r["Type"].endswith("StateMachine")]
    [policy] = machine["Properties"]["Policies"]
    invoked = policy["Statement"][0]["Resource"]
    assert invoked == [
        {"Fn::GetAtt": ["IndexFunction", "Arn"]},
        {"Fn::GetAtt": ["PutObjectFunction", "Arn"]},
    ]
    assert "def put_object(event, context):" in (tmp_path / "src/archive/app.py").read_text()
    assert yaml.safe_load((tmp_path / "statemachine").iterdir().__next__().read_text())
    # a second run has nothing left to do
    assert run(tmp_path, "--check")[0] == 0


# --- validators that are not installed ----------------------------------------------------------


@pytest.fixture
def without_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with Python but no Node.js: PATH holds only the Python interpreter's folder."""
    import sys

    bin_dir = tmp_path / "bin-without-node"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_write_goes_on_without_a_validator_and_names_it(tmp_path: Path, without_node: None) -> None:
    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "article" / "hello_world" / "module_client", app)
    code, _, err = run(app, "--write")
    assert code == 0, err
    assert "not validated with asl-validator" in err and "node is not on PATH" in err
    assert "wrote" in err
    assert list((app / "statemachine").glob("*.asl.json"))


def test_strict_validation_fails_when_a_validator_is_missing(
    tmp_path: Path, without_node: None
) -> None:
    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "article" / "hello_world" / "module_client", app)
    before = _snapshot(app)
    code, _, err = run(app, "--write", "--strict-validation")
    assert code == 2
    assert "validation failed: asl-validator" in err and "nothing was written" in err
    assert _snapshot(app) == before


def test_asl_validator_installed_with_npm_global_is_found_on_path(tmp_path: Path) -> None:
    from untangle.validate import _package_of_command

    package = tmp_path / "lib" / "node_modules" / "asl-validator"
    (package / "bin").mkdir(parents=True)
    (package / "package.json").write_text('{"name": "asl-validator", "version": "4.0.0"}')
    (package / "bin" / "asl-validator.js").write_text("#!/usr/bin/env node\n")
    (tmp_path / "bin").mkdir()
    command = tmp_path / "bin" / "asl-validator"
    command.symlink_to(package / "bin" / "asl-validator.js")
    assert _package_of_command(str(command)) == package.resolve()
    # a command of another package is not taken for it
    other = tmp_path / "lib" / "node_modules" / "other"
    (other / "bin").mkdir(parents=True)
    (other / "package.json").write_text('{"name": "other"}')
    (other / "bin" / "x.js").write_text("")
    assert _package_of_command(str(other / "bin" / "x.js")) is None
    assert _package_of_command(None) is None


def test_the_template_deploys_twice_in_one_account(tmp_path: Path) -> None:
    """No fixed `Name:` on the state machine (nor on its log group): CloudFormation names them
    per stack, so two stacks of one template do not collide."""
    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "article" / "hello_world" / "module_client", app)
    assert run(app, "--write")[0] == 0
    template = cfn_load((app / "template.yaml").read_text())
    machines = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::StateMachine"
    ]
    assert machines and all("Name" not in m["Properties"] for m in machines)
    groups = [r for r in template["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert all("AWS::StackName" in str(g["Properties"]["LogGroupName"]) for g in groups)


# --- the rewritten handler in a project ---------------------------------------------------------

ORCHESTRATOR_APP = (
    "import json\n"
    "import logging\n"
    "\n"
    "import boto3\n"
    "\n"
    "lam = boto3.client('lambda')\n"
    "\n"
    "\n"
    "def describe(event):\n"
    "    return json.dumps(event)\n"
    "\n"
    "\n"
    "def handler(event, context):\n"
    "    return lam.invoke(FunctionName='a-rather-long-worker-function-name', "
    "Payload=describe(event))\n"
)

STYLES = [
    pytest.param({"pyproject.toml": "[tool.ruff]\nline-length = 79\n"}, 79, id="ruff-79"),
    pytest.param({"pyproject.toml": "[tool.black]\nline-length = 120\n"}, 120, id="black-120"),
    pytest.param({"ruff.toml": "line-length = 79\n"}, 79, id="ruff-toml-79"),
    pytest.param(
        {"pyproject.toml": "[tool.ruff]\nline-length = 120\n[tool.black]\nline-length = 79\n"},
        120,
        id="ruff-before-black",
    ),
    pytest.param({"pyproject.toml": "[project]\nname = 'x'\n"}, 88, id="near-miss-no-setting"),
    pytest.param({}, 88, id="near-miss-no-config"),
]


@pytest.mark.parametrize(("config", "width"), STYLES)
def test_the_rewritten_handler_fits_the_projects_line_length(
    tmp_path: Path, config: dict[str, str], width: int
) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    for name, text in config.items():
        (project / name).write_text(text)
    (project / "src" / "app.py").write_text(ORCHESTRATOR_APP)
    (project / "src" / "other.py").write_text("from app import describe\n")
    code, diff, err = run(project)
    assert code == 0, err
    section = diff.split("+++ b/src/app.py\n")[1].split("\n--- ")[0]
    added = [line[1:] for line in section.splitlines() if line.startswith("+")]
    assert added and max(len(line) for line in added) <= width
    assert run(project, "--write")[0] == 0
    text = (project / "src" / "app.py").read_text()
    assert max(len(line) for line in text.splitlines()) <= width
    # the unrelated unused import stays, the helper another module imports stays, the client goes
    assert "import logging\n" in text and "def describe(" in text and "lam =" not in text


def test_a_helper_only_the_old_handler_used_goes_and_migrate_says_so(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(ORCHESTRATOR_APP)
    code, _, err = run(tmp_path, "--write")
    assert code == 0, err
    assert "removed what only the old handler used: lam, describe" in err
    text = (tmp_path / "app.py").read_text()
    assert "def describe(" not in text and "import logging\n" in text


def test_a_crlf_handler_stays_crlf(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_bytes(ORCHESTRATOR_APP.replace("\n", "\r\n").encode())
    assert run(tmp_path, "--write")[0] == 0
    data = (tmp_path / "app.py").read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n") > 10


def test_a_conditional_redefinition_of_the_handler_is_refused_with_its_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.py").write_text(
        ORCHESTRATOR_APP + "\n\nif DEBUG:\n    def handler(event, context):\n"
        "        return lam.invoke(FunctionName='debug-worker')\n"
    )
    before = _snapshot(tmp_path)
    code, _, err = run(tmp_path, "--write")
    assert code == 1
    assert "app.py:18: handler() at line 13 is defined again under `if` at line 18" in err
    assert _snapshot(tmp_path) == before


HOSTILE_IDS = [
    pytest.param('Orders"""\n  import os\n  """', id="triple-quotes"),
    pytest.param("Orders\\", id="backslash"),
    pytest.param("Orders\\N{", id="named-escape"),
    pytest.param("Orders\r\n# x", id="crlf"),
    pytest.param("OrdersFunction", id="near-miss-plain"),
]


@pytest.mark.parametrize("logical_id", HOSTILE_IDS)
def test_a_hostile_logical_id_stays_text_in_generated_python(
    tmp_path: Path, logical_id: str
) -> None:
    import ast
    import json as json_module

    from untangle.cli import _scan_options
    from untangle.config import Config
    from untangle.files import read_source, read_text
    from untangle.migrate import compute_migration
    from untangle.plan import plan
    from untangle.scan import load_tree

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(
        "import json\nimport boto3\nlam = boto3.client('lambda')\n\n\n"
        "def handler(event, context):\n"
        "    total = event['total'] * 1.2\n"
        "    return lam.invoke(FunctionName='worker', Payload=json.dumps({'t': total}))\n"
    )
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n"
        f"  {json_module.dumps(logical_id)}:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n      CodeUri: src/\n      Handler: app.handler\n"
        "      Runtime: python3.12\n"
    )
    tree = load_tree([str(tmp_path)], _scan_options(Config(), True))
    planned = plan(tree.program, tree.templates, read_source)
    migration = compute_migration(planned, tree.templates, read_text, str(tmp_path))
    python = {p: t for p, t in migration.contents().items() if p.endswith(".py")}
    assert python, migration.skipped
    for text in python.values():
        module = ast.parse(text)
        # nothing but imports, the client and functions: no statement injected by the name
        assert all(
            isinstance(n, (ast.Import, ast.ImportFrom, ast.Assign, ast.FunctionDef))
            for n in module.body
        )
