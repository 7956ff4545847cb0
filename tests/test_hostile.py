"""Hostile input through every command: each case plants something bad next to a good app and
runs scan, plan and migrate (a dry run) on the tree. Whatever the input, every command

- exits with a documented code (0 or 1; 2 for a configuration it cannot use),
- prints no traceback and finishes within a deadline,
- writes nothing (a dry run) and nothing outside the project root (the folder above it is
  snapshotted, with a victim file in it),
- names the bad file in one message (on stderr for plan and migrate, with its line when it has
  one), and goes on with the good handler.

The cases come from tables and generators (bad bytes at every kind of position, deep nesting
of every construct, names, links, templates, configs, handler and function names); a few that
crashed the process (a native parser's segfault, a FIFO, /dev/zero) run as subprocesses.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from untangle.cli import main

GOOD = """\
import boto3

client = boto3.client("lambda")


def handler(event, context):
    client.invoke(FunctionName="validate")
    client.invoke(FunctionName="charge")
    return {"ok": True}
"""
GOOD_WORKFLOW = "GoodWorkflow"
# every planted file mentions `.invoke`, so the scan cannot skip it as irrelevant; it has no
# handler, so plan and migrate have one workflow per handler case, not per file
INVOKE = 'import boto3\n\nboto3.client("lambda").invoke(FunctionName="x")\n'

Plant = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    plant: Plant
    named: str | None  # the name the one message must show; None: the input is fine
    config_error: bool = False  # a config the commands refuse (exit 2, one line)
    # whether the input is bad depends on the interpreter (how deep its parser goes): at most
    # one message, then
    maybe: bool = False


def runner() -> CliRunner:
    try:  # click < 8.2 mixes stderr into stdout unless told otherwise
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


class Hang(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """A command that blocks (a FIFO opened for reading) fails the test instead of hanging it."""

    def expire(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def snapshot(top: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under `top` (links not followed): its kind, size and mtime."""
    found: dict[str, tuple[int, int, int]] = {}
    for folder, dirs, files in os.walk(os.fsencode(top)):
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            found[os.fsdecode(path)] = (stat.S_IFMT(info.st_mode), info.st_size, info.st_mtime_ns)
    return found


def run(*args: str) -> Result:
    with deadline(300):
        result = runner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"untangle {' '.join(args)} raised {result.exception!r}")
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def error_lines(text: str, named: str) -> list[str]:
    return [line for line in text.splitlines() if named in line and "error" in line]


def make_project(top: Path) -> Path:
    """top/root/app with the good handler; top/outside/victim.py beside the root."""
    root = top / "root"
    (root / "app").mkdir(parents=True)
    (root / "app" / "good.py").write_text(GOOD)
    (top / "outside").mkdir()
    (top / "outside" / "victim.py").write_text("VICTIM = 1\n")
    return root


@contextlib.contextmanager
def inside(root: Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(previous)


@dataclass
class Runs:
    """The three commands, run once on a tree holding every case, each case in its folder."""

    results: dict[str, Result]
    outside_before: dict[str, tuple[int, int, int]]
    outside_after: dict[str, tuple[int, int, int]]
    tree_before: dict[str, tuple[int, int, int]]
    tree_after: dict[str, tuple[int, int, int]]


def check_good_app_went_on(results: dict[str, Result]) -> None:
    scan, plan, migrate = results["scan"], results["plan"], results["migrate"]
    assert "app/good.py:7:5: UNT001" in scan.stdout, scan.stdout
    assert f"== {GOOD_WORKFLOW}: converted" in plan.stdout, plan.stderr
    assert f"migrated {GOOD_WORKFLOW}" in migrate.stderr, migrate.stderr
    assert "+++ b/good.py" in migrate.stdout


def messages(results: dict[str, Result], command: str) -> str:
    """Where a command names the files it could not read: scan on stdout (its report), plan and
    migrate on stderr (stdout is the artifact)."""
    result = results[command]
    return result.stdout if command == "scan" else result.stderr


# --- the cases ----------------------------------------------------------------------------------


def write(name: str, data: bytes | str) -> Plant:
    def plant(folder: Path) -> None:
        path = os.path.join(os.fsencode(folder), os.fsencode(name))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)

    return plant


def both(*plants: Plant) -> Plant:
    def plant(folder: Path) -> None:
        for one in plants:
            one(folder)

    return plant


def encodings() -> Iterator[object]:
    bad_bytes = {
        "lone-continuation": b"\x80",
        "ff": b"\xff",
        "truncated-2-byte": b"\xc3",
        "overlong-slash": b"\xc0\xaf",
        "utf8-surrogate": b"\xed\xa0\x80",
        "beyond-unicode": b"\xf4\x90\x80\x80",
        "latin1-e-acute": b"\xe9",
        "cp1252-euro": b"\x80",
    }
    places = {
        "in-a-string": lambda b: INVOKE.encode() + b'x = "' + b + b'"\n',
        "in-a-comment": lambda b: INVOKE.encode() + b"# " + b + b"\n",
        "first-line": lambda b: b"# " + b + b"\n" + INVOKE.encode(),
        "in-a-name": lambda b: INVOKE.encode() + b"na" + b + b"me = 1\n",
    }
    for byte_id, data in bad_bytes.items():
        for place_id, build in places.items():
            yield pytest.param(
                Case(write("bad.py", build(data)), "bad.py"), id=f"bytes-{byte_id}-{place_id}"
            )
    for codec in ("klingon", "utf-99", "rot13", "hex", "base64"):
        yield pytest.param(
            Case(write("bad.py", f"# -*- coding: {codec} -*-\n" + INVOKE), "bad.py"),
            id=f"coding-{codec}",
        )
    yield pytest.param(
        Case(write("bad.py", b"# coding: ascii\n" + INVOKE.encode() + b"x = '\xe9'\n"), "bad.py"),
        id="byte-outside-declared-ascii",
    )
    yield pytest.param(Case(write("bad.py", "\ufeff" + INVOKE + "x = 1\n"), None), id="utf8-bom")
    for codec in ("utf-16", "utf-32"):
        yield pytest.param(
            Case(write("bad.py", INVOKE.encode(codec) + b"\n.invoke(\n"), "bad.py"),
            id=f"{codec}-with-bom",
        )
    for codec, text in (("latin-1", "caf\xe9"), ("cp1252", "\u20ac"), ("koi8-r", "\u0436")):
        yield pytest.param(
            Case(
                write("fine.py", f"# -*- coding: {codec} -*-\nNAME = {text!r}\n".encode(codec)),
                None,
            ),
            id=f"declared-{codec}",
        )


def binaries() -> Iterator[object]:
    generator = random.Random(13)
    for index in range(12):
        blob = bytes(generator.randrange(256) for _ in range(generator.randrange(1, 4000)))
        # every bad file mentions `.invoke`, so the scan cannot skip it as irrelevant
        yield pytest.param(
            Case(write("blob.py", blob + b"\n.invoke(\n"), "blob.py"),
            id=f"random-bytes-{index}",
        )
    headers = {
        "elf": b"\x7fELF\x02\x01\x01\x00",
        "png": b"\x89PNG\r\n\x1a\n",
        "gzip": b"\x1f\x8b\x08\x00",
        "pyc": b"\xa7\r\r\n\x00\x00\x00\x00",
        "nul-in-code": b"import boto3\x00\n",
    }
    for name, header in headers.items():
        yield pytest.param(
            Case(write("blob.py", header + b"\x00.invoke(\n"), "blob.py"), id=f"binary-{name}"
        )


def huge() -> Iterator[object]:
    line = "# " + ".invoke( " * 200_000 + "\n"
    yield pytest.param(Case(write("wide.py", INVOKE + line), None), id="1.8mb-comment-line")
    yield pytest.param(
        Case(write("wide.py", INVOKE + "S = '" + "x" * 2_000_000 + "'\n"), None),
        id="2mb-string-literal",
    )
    yield pytest.param(
        Case(write("many.py", INVOKE + "".join(f"v{i} = {i}\n" for i in range(50_000))), None),
        id="50000-assignments",
    )
    yield pytest.param(
        Case(write("long.py", INVOKE + "x = [" + "1, " * 300_000 + "]\n"), None),
        id="300000-element-list",
    )
    yield pytest.param(Case(write("nl.py", INVOKE + "\n" * 300_000), None), id="300000-newlines")
    yield pytest.param(
        Case(write("cr.py", INVOKE.replace("\n", "\r") + "\r" * 1000), None), id="old-mac-newlines"
    )


def nesting() -> Iterator[object]:
    deep = {
        # construct → (depth that parses, depth that does not)
        "parentheses": (lambda n: "x = " + "(" * n + "1" + ")" * n, 150, 250),
        "lists": (lambda n: "x = " + "[" * n + "]" * n, 150, 250),
        "dicts": (lambda n: "x = " + "{1: " * n + "1" + "}" * n, 150, 250),
        "calls": (lambda n: "x = f" + "()" * n, 150, 100_000),
        "attributes": (lambda n: "x = a" + ".b" * n, 150, 100_000),
        "subscripts": (lambda n: "x = a" + "[0]" * n, 150, 100_000),
        "sum": (lambda n: "x = " + "+".join(["a"] * n), 150, 100_000),
        "or-chain": (lambda n: "x = " + " or ".join(["a"] * n), 150, 100_000),
        "not": (lambda n: "x = " + "not " * n + "a", 150, 100_000),
        "unary-minus": (lambda n: "x = " + "-" * n + "1", 150, 100_000),
        "lambdas": (lambda n: "x = " + "lambda: " * n + "1", 150, 5_000),
        "implicit-strings": (lambda n: "x = " + " ".join(["'a'"] * n), 150, 100_000),
    }
    for name, (build, fine, bad) in deep.items():
        for depth in (fine, bad):
            yield pytest.param(
                Case(write("deep.py", INVOKE + build(depth) + "\n"), "deep.py", maybe=True),
                id=f"{name}-{depth}",
            )
    for depth, bad in ((98, False), (100, True), (150, True)):
        text = "".join("    " * i + "if x:\n" for i in range(depth)) + "    " * depth + "pass\n"
        yield pytest.param(
            Case(write("deep.py", INVOKE + text), "deep.py" if bad else None),
            id=f"{depth}-nested-ifs",
        )
    defs = "".join("    " * i + f"def f{i}():\n" for i in range(60)) + "    " * 60 + "pass\n"
    yield pytest.param(Case(write("deep.py", INVOKE + defs), None), id="60-nested-defs")


def uncompilable() -> Iterator[object]:
    bodies = {
        "return-at-module-level": "return 1\n",
        "nonlocal-at-module-level": "nonlocal x\n",
        "await-outside-async": "def f():\n    await g()\n",
        "yield-outside-function": "yield 1\n",
        "duplicate-argument": "def f(a, a):\n    pass\n",
        "break-outside-loop": "break\n",
        "continue-outside-loop": "continue\n",
        "global-after-use": "def f():\n    x = 1\n    global x\n",
        "async-comprehension-outside-async": "def f():\n    [x async for x in y]\n",
        "starred-assignment-twice": "*a, *b = c\n",
        "return-with-value-in-async-generator": "async def f():\n    yield 1\n    return 2\n",
        "future-import-late": "x = 1\nfrom __future__ import annotations\n",
        "unknown-future": "from __future__ import braces\n",
        "assign-to-debug": "__debug__ = 1\n",
    }
    # a PEP 701 f-string: on Python 3.11 the file is parsed by LibCST first
    newer = 'S = f"{"nested quotes"}"\n'
    for name, body in bodies.items():
        yield pytest.param(Case(write("bad.py", INVOKE + body), "bad.py"), id=name)
        yield pytest.param(
            Case(write("bad.py", INVOKE + newer + body), "bad.py"), id=f"{name}-3.12-syntax"
        )


def names() -> Iterator[object]:
    fine = [
        "caf\u00e9.py",
        "\U0001f600.py",
        "with space.py",
        "-leading-dash.py",
        "a.b.py",
        "colon:name.py",
        "percent%s.py",
        "braces{}.py",
        "back\\slash.py",
        "x" * 240 + ".py",
        ".hidden.py",
        "sub dir/app.py",
        "new\nline.py",
        "tab\there.py",
        "quote'\".py",
        "\u202eevil.py",
    ]
    for name in fine:
        yield pytest.param(Case(write(name, INVOKE), None), id=f"name-{name[:20]!r}")
    for raw, shown in (
        (b"b\xffd.py", "b\\xffd.py"),
        (b"caf\xe9.py", "caf\\xe9.py"),
        (b"d\xffr/app.py", "d\\xffr"),
        (b"ok/\xfe\xfe/app.py", "ok/\\xfe\\xfe"),
        (b"x\xc3.yaml", "x\\xc3.yaml"),
    ):
        yield pytest.param(
            Case(write(raw.decode("utf-8", "surrogateescape"), INVOKE), shown),
            id=f"undecodable-{shown}",
        )


def links() -> Iterator[object]:
    def link(name: str, target: str) -> Plant:
        def plant(folder: Path) -> None:
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            outside = folder.parent.parent.parent / "outside"  # beside the project root
            path.symlink_to(target.replace("OUTSIDE", os.path.relpath(outside, path.parent)))

        return plant

    def fifo(name: str) -> Plant:
        def plant(folder: Path) -> None:
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(path)

        return plant

    yield pytest.param(Case(link("loop", ".."), "loop"), id="dir-link-to-parent")
    yield pytest.param(Case(link("sub/up", "../.."), "sub/up"), id="dir-link-to-grandparent")
    yield pytest.param(Case(link("self.py", "self.py"), "self.py"), id="file-link-to-itself")
    yield pytest.param(Case(link("gone.py", "missing.py"), "gone.py"), id="dangling-link")
    yield pytest.param(
        Case(link("template.yaml", "missing.yaml"), "template.yaml"), id="dangling-template"
    )
    yield pytest.param(Case(link("zero.py", "/dev/zero"), "zero.py"), id="link-to-dev-zero")
    yield pytest.param(Case(link("null.py", "/dev/null"), "null.py"), id="link-to-dev-null")
    yield pytest.param(Case(fifo("pipe.py"), "pipe.py"), id="fifo-named-py")
    yield pytest.param(Case(fifo("template.yaml"), "template.yaml"), id="fifo-template")
    yield pytest.param(Case(fifo("notes.txt"), None), id="fifo-other-name")
    yield pytest.param(Case(both(fifo("p"), link("pipe.py", "p")), "pipe.py"), id="link-to-fifo")
    yield pytest.param(
        Case(link("outside.py", "OUTSIDE/victim.py"), None), id="link-to-outside-file"
    )
    yield pytest.param(Case(link("out", "OUTSIDE"), None), id="link-to-outside-dir")


def empties() -> Iterator[object]:
    for name, data in (
        ("empty.py", b""),
        ("bom.py", b"\xef\xbb\xbf"),
        ("newline.py", b"\n"),
        ("comment.py", b"# .invoke(\n"),
        ("__init__.py", b""),
        ("spaces.py", b"   \n\t\n"),
        ("template.yaml", b""),
        ("template.json", b""),
        ("samconfig.yaml", b"---\n"),
    ):
        yield pytest.param(Case(write(name, data), None), id=f"empty-{name}")


TEMPLATE_HEAD = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  OtherFunction:
    Type: AWS::Serverless::Function
"""


def templates() -> Iterator[object]:
    bad = {
        # the error is the YAML's: scan names the template, at its line
        "yaml-error": TEMPLATE_HEAD + "    Properties: [Handler: app.handler\n",
        "multi-document": TEMPLATE_HEAD + "    Properties:\n      Handler: x.handler\n---\na: 1\n",
        "tab-indent": TEMPLATE_HEAD + "    Properties:\n\tHandler: x.handler\n",
        "bad-alias": TEMPLATE_HEAD + "    Properties: *nothing\n      Handler: x.handler\n",
        "invalid-json": '{"Resources": {"F": {"Type": "AWS::Serverless::Function", "Handler"',
    }
    for name, text in bad.items():
        file = "template.json" if name == "invalid-json" else "template.yaml"
        yield pytest.param(Case(write(f"other/{file}", text), f"other/{file}"), id=name)
    odd = {
        "include-tag": TEMPLATE_HEAD + "    Properties: !Include props.yaml\n",
        "resources-list": "Resources:\n  - Type: AWS::Serverless::Function\n    Handler: a.b\n",
        "resources-string": "Resources: AWS::Serverless::Function Handler\n",
        "properties-null": TEMPLATE_HEAD + "    Properties: null\n",
        "properties-list": TEMPLATE_HEAD + "    Properties: [Handler, a.b]\n",
        "handler-int": TEMPLATE_HEAD + "    Properties:\n      Handler: 42\n",
        "handler-list": TEMPLATE_HEAD + "    Properties:\n      Handler: [a.b]\n",
        "handler-empty": TEMPLATE_HEAD + "    Properties:\n      Handler: ''\n",
        "handler-dots": TEMPLATE_HEAD + "    Properties:\n      Handler: '....'\n",
        "handler-traversal": TEMPLATE_HEAD
        + "    Properties:\n      Handler: ../../outside/victim.x\n",
        "handler-absolute": TEMPLATE_HEAD + "    Properties:\n      Handler: /etc/passwd.x\n",
        "codeuri-dict": TEMPLATE_HEAD
        + "    Properties:\n      Handler: a.b\n      CodeUri: {Bucket: b, Key: k}\n",
        "codeuri-traversal": TEMPLATE_HEAD
        + "    Properties:\n      Handler: victim.x\n      CodeUri: ../../../../outside\n",
        "codeuri-absolute": TEMPLATE_HEAD
        + "    Properties:\n      Handler: a.b\n      CodeUri: /\n",
        "globals-scalar": "Globals: 5\n" + TEMPLATE_HEAD + "    Properties:\n      Handler: a.b\n",
        "globals-function-list": "Globals:\n  Function: [1]\n"
        + TEMPLATE_HEAD
        + "    Properties:\n      Handler: a.b\n",
        "layers-garbage": TEMPLATE_HEAD + "    Properties:\n      Handler: a.b\n      Layers: 7\n",
        "environment-list": TEMPLATE_HEAD
        + "    Properties:\n      Handler: a.b\n      Environment: [1, 2]\n",
        "function-name-star": TEMPLATE_HEAD
        + "    Properties:\n      Handler: a.b\n      FunctionName: '*'\n",
        "unknown-tags": TEMPLATE_HEAD
        + "    Properties:\n      Handler: !Weird a.b\n      CodeUri: !Sub ${X}\n",
        "anchor-bomb": "a: &a [x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        + TEMPLATE_HEAD
        + "    Properties:\n      Handler: a.b\n",
        "top-level-list": "- AWS::Serverless::Function\n- Handler\n",
        "top-level-scalar": "AWS::Serverless::Function Handler\n",
        "json-array": '["AWS::Serverless::Function", "Handler"]',
        "huge-logical-id": TEMPLATE_HEAD.replace("OtherFunction", "F" * 5000)
        + "    Properties:\n      Handler: a.b\n",
        "non-utf8": (TEMPLATE_HEAD + "    Properties:\n      Handler: a.b # caf\xe9\n").encode(
            "latin-1"
        ),
    }
    for name, data in odd.items():
        file = "template.json" if name == "json-array" else "template.yaml"
        # YAML allows keys up to 1024 characters: the long logical id is a YAML error
        named = f"other/{file}" if name in ("non-utf8", "huge-logical-id") else None
        yield pytest.param(Case(write(f"other/{file}", data), named), id=f"template-{name}")


def configs() -> Iterator[object]:
    def config(text: str | bytes) -> Plant:
        def plant(root: Path) -> None:
            data = text.encode() if isinstance(text, str) else text
            (root / "pyproject.toml").write_bytes(data)

        return plant

    refused = {
        "invalid-toml": "[tool.untangle\n",
        "table-not-a-table": "[tool]\nuntangle = 5\n",
        "unknown-key": "[tool.untangle]\nfoo = 1\n",
        "include-not-a-list": "[tool.untangle]\ninclude = '*.py'\n",
        "exclude-of-ints": "[tool.untangle]\nexclude = [1, 2]\n",
        "max-file-size-zero": "[tool.untangle]\nmax-file-size = 0\n",
        "max-file-size-negative": "[tool.untangle]\nmax-file-size = -1\n",
        "max-file-size-string": "[tool.untangle]\nmax-file-size = '10'\n",
        "max-file-size-bool": "[tool.untangle]\nmax-file-size = true\n",
        "non-utf8": b"[tool.untangle]\nexclude = ['caf\xe9']\n",
        "nested-arrays": "[tool.untangle]\nx = " + "[" * 5000 + "]" * 5000 + "\n",
    }
    for name, text in refused.items():
        yield pytest.param(
            Case(config(text), "pyproject.toml", config_error=True), id=f"config-{name}"
        )
    fine = {
        "tool-is-a-string": "tool = 'untangle'\n",
        "empty-table": "[tool.untangle]\n",
        "odd-globs": "[tool.untangle]\nexclude = ['[', '**/**/**', '']\ninclude = ['*.py', '[!']\n",
        "extra-paths-outside": "[tool.untangle]\nextra-paths = ['../outside', '/', '']\n",
        "handler-patterns-star": "[tool.untangle]\nhandler-patterns = ['*', '**', '']\n",
        "huge-max-file-size": "[tool.untangle]\nmax-file-size = 9223372036854775807\n",
        "other-tools-only": "[tool.black]\nline-length = 1\n",
    }
    for name, text in fine.items():
        yield pytest.param(Case(config(text), None), id=f"config-{name}")


def handler_names() -> Iterator[object]:
    modules = {
        "unicode-identifier": "def h\u00e4ndler(event, context):\n    c.invoke(FunctionName='x')\n",
        "handler-twice": (
            "def handler(event, context):\n"
            "    pass\n"
            "\n"
            "\n"
            "def handler(event, context):\n"
            "    c.invoke(FunctionName='x')\n"
        ),
        "handler-method": (
            "class A:\n    def handler(self, event, context):\n        c.invoke(FunctionName='x')\n"
        ),
        "handler-lambda": "handler = lambda event, context: c.invoke(FunctionName='x')\n",
        "handler-nested": (
            "def outer():\n    def handler(event, context):\n        c.invoke(FunctionName='x')\n"
        ),
        "handler-conditional": (
            "if True:\n    def handler(event, context):\n        c.invoke(FunctionName='x')\n"
        ),
        "starter-name-taken": (
            "def _untangle_start(event):\n"
            "    pass\n"
            "\n"
            "\n"
            "def handler(event, context):\n"
            "    c.invoke(FunctionName='x')\n"
        ),
        "nested-comprehension": (
            "def handler(event, context):\n"
            "    return [[c.invoke(FunctionName=y) for y in z] for z in event['a']]\n"
        ),
        "comprehension-in-filter": (
            "def handler(event, context):\n"
            "    return [c.invoke(FunctionName=z) for z in event['a']\n"
            "            if [c.invoke(FunctionName='p') for p in z]]\n"
        ),
        "comprehension-in-generator": (
            "def handler(event, context):\n"
            "    return list(c.invoke(FunctionName=z) for z in [w for w in event['a']])\n"
        ),
        "dict-of-comprehensions": (
            "def handler(event, context):\n"
            "    return {k: [c.invoke(FunctionName=v) for v in vs] for k, vs in event.items()}\n"
        ),
        "walrus-in-comprehension": (
            "def handler(event, context):\n"
            "    return [(r := c.invoke(FunctionName=z)) for z in event['a']]\n"
        ),
        "invoke-in-lambda-default": (
            "def handler(event, context, f=lambda: c.invoke(FunctionName='x')):\n    return f()\n"
        ),
        "invoke-in-decorator": (
            "@c.invoke(FunctionName='x')\ndef handler(event, context):\n    pass\n"
        ),
        "invoke-in-default": (
            "def handler(event, context, r=c.invoke(FunctionName='x')):\n    return r\n"
        ),
        "match-statement": (
            "def handler(event, context):\n"
            "    match event:\n"
            "        case {'a': x}:\n"
            "            c.invoke(FunctionName=x)\n"
        ),
        "try-star": (
            "def handler(event, context):\n"
            "    try:\n"
            "        c.invoke(FunctionName='x')\n"
            "    except* ValueError:\n"
            "        pass\n"
        ),
        "recursive-handler": (
            "def handler(event, context):\n"
            "    c.invoke(FunctionName='x')\n"
            "    return handler(event, context)\n"
        ),
        "mutual-recursion": (
            "def f(e):\n"
            "    return g(e)\n"
            "\n"
            "\n"
            "def g(e):\n"
            "    c.invoke(FunctionName='x')\n"
            "    return f(e)\n"
            "\n"
            "\n"
            "def handler(event, context):\n"
            "    return f(event)\n"
        ),
    }
    for name, body in modules.items():
        text = "import boto3\n\nc = boto3.client('lambda')\n\n\n" + body
        yield pytest.param(Case(write("odd.py", text), None), id=f"handler-{name}")
    targets = [
        "x\\ny",
        "${AWS::Region}",
        "'; DROP TABLE x; --",
        "*",
        "a" * 1000,
        "\u202eevil",
        "!Ref Foo",
        "{{resolve:ssm:x}}",
        "a: b",
        "- item",
        "#comment",
        "",
        "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST",
        "$.x",
        "\\u0000",
        "\u00e9t\u00e9",
    ]
    # four handlers of four hostile names each: every rewrite costs the run half a second
    for index in range(0, len(targets), 4):
        calls = "".join(f"    c.invoke(FunctionName={t!r})\n" for t in targets[index : index + 4])
        text = "import boto3\n\nc = boto3.client('lambda')\n\n\ndef handler(event, context):\n"
        shown = ",".join(repr(t[:8]) for t in targets[index : index + 4])
        yield pytest.param(Case(write("odd.py", text + calls), None), id=f"targets-{shown}")


TREE_CASES = [
    *encodings(),
    *binaries(),
    *huge(),
    *nesting(),
    *uncompilable(),
    *names(),
    *links(),
    *empties(),
    *templates(),
    *handler_names(),
]
CONFIG_CASES = list(configs())
COMMANDS = ("scan", "plan", "migrate")


def folder_of(index: int) -> str:
    return f"c{index:03d}"


@pytest.fixture(scope="module")
def tree_runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    top = tmp_path_factory.mktemp("hostile")
    root = make_project(top)
    for index, param in enumerate(TREE_CASES):
        (case,) = param.values
        assert isinstance(case, Case)
        folder = root / "app" / folder_of(index)
        folder.mkdir()
        case.plant(folder)
    outside_before, tree_before = snapshot(top / "outside"), snapshot(root)
    with inside(root):
        results = {command: run(command, "--no-cache", "app") for command in COMMANDS}
    return Runs(results, outside_before, snapshot(top / "outside"), tree_before, snapshot(root))


def test_there_are_at_least_200_cases() -> None:
    assert len(TREE_CASES) + len(CONFIG_CASES) >= 200


def test_every_command_goes_on_and_writes_nothing(tree_runs: Runs) -> None:
    for command, result in tree_runs.results.items():
        assert result.exit_code == 1, (command, result.stderr[-3000:])  # files it could not read
    check_good_app_went_on(tree_runs.results)
    assert tree_runs.outside_after == tree_runs.outside_before
    assert tree_runs.tree_after == tree_runs.tree_before  # a dry run writes nothing


@pytest.mark.parametrize("index", range(len(TREE_CASES)), ids=[p.id for p in TREE_CASES])
def test_hostile_input_is_named_once(tree_runs: Runs, index: int) -> None:
    (case,) = TREE_CASES[index].values
    assert isinstance(case, Case)
    folder = f"app/{folder_of(index)}/"
    for command in COMMANDS:
        said = messages(tree_runs.results, command)
        mine = error_lines(said, folder)
        if case.named is None:
            assert mine == [], (command, mine)
            continue
        named = error_lines(said, folder + case.named)
        if case.maybe:
            assert len(named) <= 1 and len(mine) == len(named), (command, mine)
        else:
            assert len(named) == 1 and len(mine) == 1, (command, mine)


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_hostile_config(tmp_path: Path, case: Case) -> None:
    root = make_project(tmp_path)
    case.plant(root)
    outside = snapshot(tmp_path / "outside")
    with inside(root):
        results = {command: run(command, "--no-cache", "app") for command in COMMANDS}
    for command, result in results.items():
        if case.config_error:
            assert result.exit_code == 2, (command, result.stderr)
            assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
            assert f"{case.named}: " in result.stderr, result.stderr
        else:
            assert result.exit_code in (0, 1), (command, result.stderr)
    if not case.config_error:
        check_good_app_went_on(results)
    assert snapshot(tmp_path / "outside") == outside


# --- what crashed or hung the process: in a subprocess, with a timeout -------------------------


def untangle_process(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "untangle", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )


BOOL_CHAIN = (
    "import boto3\n\nc = boto3.client('lambda')\n\n\ndef handler(event, context):\n"
    "    x = " + " or ".join(["event"] * 100_000) + "\n"
    "    c.invoke(FunctionName='x')\n    c.invoke(FunctionName='y')\n"
)


@pytest.mark.parametrize(
    ("plant", "args", "code", "said"),
    [
        pytest.param(
            write("chain.py", BOOL_CHAIN),
            ("migrate", "--no-cache", "app"),
            1,
            "cannot rewrite the handler: its module nests expressions or statements 100004",
            id="100000-term-or-chain-in-a-handler",
        ),
        pytest.param(
            write("chain.py", 'S = f"{"x"}"\n' + BOOL_CHAIN),
            ("scan", "--no-cache", "app"),
            1,
            "app/chain.py: error: too deeply nested to parse",
            id="3.12-syntax-and-a-100000-term-chain",
        ),
        pytest.param(
            lambda folder: os.mkfifo(folder / "pipe.py"),
            ("scan", "--no-cache", "app/pipe.py", "app/good.py"),
            1,
            "app/pipe.py: error: skipped: not a regular file (a FIFO)",
            id="fifo-argument-scan",
        ),
        pytest.param(
            lambda folder: os.mkfifo(folder / "pipe.py"),
            ("migrate", "--no-cache", "app/pipe.py", "app/good.py"),
            1,
            "app/pipe.py: error: skipped: not a regular file (a FIFO)",
            id="fifo-argument-migrate",
        ),
        pytest.param(
            lambda folder: None,
            ("plan", "--no-cache", "--config", "/dev/zero", "app"),
            2,
            "untangle: error: /dev/zero: cannot read: not a regular file (a character device)",
            id="config-dev-zero",
        ),
        pytest.param(
            lambda folder: os.mkfifo(folder / "pyproject.toml"),
            ("migrate", "--no-cache", "--config", "app/pyproject.toml", "app"),
            2,
            "app/pyproject.toml: cannot read: not a regular file (a FIFO)",
            id="config-fifo",
        ),
        pytest.param(
            lambda folder: (folder / os.fsdecode(b"caf\xe9")).mkdir(),
            ("plan", "--no-cache", os.path.join("app", os.fsdecode(b"caf\xe9"))),
            2,
            "path name is not valid UTF-8",
            id="undecodable-path-argument",
        ),
    ],
)
def test_what_crashed_or_hung(
    tmp_path: Path, plant: Plant, args: tuple[str, ...], code: int, said: str
) -> None:
    root = make_project(tmp_path)
    plant(root / "app")
    outside = snapshot(tmp_path / "outside")
    result = untangle_process(root, *args)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    assert said in result.stdout + result.stderr, result.stdout + result.stderr
    assert snapshot(tmp_path / "outside") == outside


# --- --write, with hostile files beside the good app -------------------------------------------


def test_write_goes_on_beside_hostile_files_and_keeps_the_declared_encoding(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path)
    app = root / "app"
    latin = (
        "# -*- coding: latin-1 -*-\nimport boto3\n\nc = boto3.client('lambda')\n"
        "GREETING = 'caf\xe9'\n\n\ndef handler(event, context):\n"
        "    c.invoke(FunctionName='one')\n    c.invoke(FunctionName='two')\n"
        "    return {'ok': True}\n"
    )
    (app / "latin.py").write_bytes(latin.encode("latin-1"))
    hostile = {
        "bad.py": (INVOKE + "return 1\n").encode(),
        os.fsdecode(b"b\xffd.py"): INVOKE.encode(),
        "other/template.yaml": (TEMPLATE_HEAD + "    Properties: [Handler: x\n").encode(),
    }
    for name, data in hostile.items():
        write(name, data)(app)
    os.mkfifo(app / "pipe.py")
    outside = snapshot(tmp_path / "outside")
    with inside(root):
        result = run("migrate", "--no-cache", "--write", "app")
    assert result.exit_code == 1, result.stderr
    # the YAML error's line is where libyaml or PyYAML notices it: either is the template's
    for named in ("app/bad.py:4", "app/b\\xffd.py", "app/other/template.yaml:", "app/pipe.py"):
        assert len(error_lines(result.stderr, named)) == 1, (named, result.stderr)
    assert "wrote " in result.stderr, result.stderr
    written = (app / "latin.py").read_bytes()
    assert written.startswith(b"# -*- coding: latin-1 -*-\n")
    assert b"GREETING = 'caf\xe9'" in written  # in its own encoding, not UTF-8
    assert "start_sync_execution" in written.decode("latin-1")
    assert "start_sync_execution" in (app / "good.py").read_text()
    for name, data in hostile.items():
        assert (app / name).read_bytes() == data
    assert snapshot(tmp_path / "outside") == outside


def test_verify_names_hostile_files_beside_the_app(tmp_path: Path) -> None:
    pytest.importorskip("moto")
    root = make_project(tmp_path)
    app = root / "app"
    write("events/one.json", '{"id": 1}')(app)
    write("bad.py", INVOKE + "return 1\n")(app)
    write(os.fsdecode(b"b\xffd.py"), INVOKE)(app)
    os.mkfifo(app / "pipe.py")
    outside = snapshot(tmp_path / "outside")
    with inside(root):
        result = run("verify", "app")
    assert result.exit_code == 1, result.stderr
    for named in ("app/bad.py:4", "app/b\\xffd.py", "app/pipe.py"):
        assert len(error_lines(result.stderr, named)) == 1, (named, result.stderr)
    assert snapshot(tmp_path / "outside") == outside


# --- the template a handler is declared in: its problems are the template's --------------------

DECLARED = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  GoodFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: good.handler
      Runtime: python3.12
"""


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        pytest.param(
            DECLARED + "---\nmore: 1\n",
            "app/template.yaml:10: cannot read the template: expected a single document",
            id="multi-document",
        ),
        pytest.param(
            DECLARED + "      Timeout: [1\n",
            "app/template.yaml:11: cannot read the template: while parsing a flow sequence",
            id="yaml-error",
        ),
        pytest.param(
            DECLARED + "      Environment: [1, 2]\n",
            "app/template.yaml:4: GoodFunction has an Environment without Variables",
            id="environment-list",
        ),
        pytest.param(
            DECLARED + "      Policies: 7\n",
            "app/template.yaml:4: GoodFunction has Policies that are not a list",
            id="policies-scalar",
        ),
    ],
)
def test_migrate_reports_a_template_problem_at_the_template(
    tmp_path: Path, template: str, reason: str
) -> None:
    root = make_project(tmp_path)
    (root / "app" / "template.yaml").write_text(template)
    with inside(root):
        result = run("migrate", "--no-cache", "app")
    assert result.exit_code == 1, result.stderr
    assert f"  {reason}" in result.stderr, result.stderr
    assert "app/good.py:" not in result.stderr, result.stderr  # not the handler's line


def test_migrate_with_a_good_template_is_the_near_miss(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (root / "app" / "template.yaml").write_text(DECLARED)
    with inside(root):
        result = run("migrate", "--no-cache", "app")
    assert result.exit_code == 0, result.stderr
    assert "migrated GoodWorkflow" in result.stderr
