"""One SAM template that the workflows of a migration edit in turn: parsed once, edited in memory,
its text produced once.

Each workflow adds its resources at the end of `Resources` and edits its orchestrator (an
environment variable, a policy, the events that move, the orchestrator itself when it leaves),
or a bucket. Re-parsing the whole template for every edit made a migration quadratic in the
workflows of one template. `TemplateEditor` cuts the text into blocks, one per resource (its
key line up to the next resource's), parses the whole text once, and re-parses only the block
an edit touches, in a small document of its own: the block, a `Resources:` line above it and,
below it, the lines up to the next token of the template (that token's line replaced by a
sentinel key at the same column, so every mark in the block is where the whole text puts it).
The edit functions of `untangle.sam` run unchanged on that small document, so the text is the
one the same edits make on the whole text, byte for byte.

A template the cut cannot be trusted with (an alias, a flow collection an edit would insert
into, a line break YAML and `str.splitlines` count differently, …), or an edit it cannot make
in a block, is edited as a whole text, as before: slower, never different.

Edits are transactional: `savepoint()`, `rollback(to)`, `commit()`; a workflow that fails
leaves no trace of its edits.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from typing import Any

import yaml

from untangle import event_sources as es
from untangle import sam

_HEADER = "Resources:\n"
_SENTINEL = "UntangleNextToken"
# characters `str.splitlines` breaks lines at and YAML does not (or the reverse), a bare CR, a
# BOM past the start: line numbers of marks would not be indexes of lines
_ODD_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]|\r(?!\n)|(?<!^)\ufeff")
_WORD = re.compile(r"[A-Za-z0-9]+")
_STARTER_RESOURCE = re.compile(r"Resource: !Ref ([A-Za-z0-9]+)")

Undo = list[Callable[[], None]]


class _Unsegmentable(Exception):
    """The text, or an edit, is one the blocks cannot be trusted with: edit the whole text."""


class TemplateEditor:
    """A template's text with the edits of a migration (see the module's docstring)."""

    def __init__(self, text: str) -> None:
        self._blocks: _Blocks | None = None
        self._whole: _WholeText | None = None
        try:
            self._blocks = _Blocks(text)
        except _Unsegmentable:
            self._whole = _WholeText(text)

    @property
    def segmented(self) -> bool:
        """Whether the template is edited block by block (False: as a whole text)."""
        return self._blocks is not None

    def _run(
        self, on_blocks: Callable[[_Blocks], Any], on_whole: Callable[[_WholeText], Any]
    ) -> Any:
        if self._blocks is not None:
            try:
                return on_blocks(self._blocks)
            except _Unsegmentable:
                self._whole = self._blocks.as_whole_text()
                self._blocks = None
        assert self._whole is not None
        return on_whole(self._whole)

    # the transaction
    def savepoint(self) -> int:
        return int(self._run(lambda b: b.savepoint(), lambda w: w.savepoint()))

    def rollback(self, to: int = 0) -> None:
        """Undo the edits made since savepoint `to` (0: since the last commit)."""
        self._run(lambda b: b.rollback(to), lambda w: w.rollback(to))

    def commit(self) -> None:
        self._run(lambda b: b.commit(), lambda w: w.commit())

    # what the template says now
    def text(self) -> str:
        return str(self._run(lambda b: b.text(), lambda w: w.current))

    def is_empty(self) -> bool:
        return self._blocks is None and self._whole is not None and self._whole.current == ""

    def check(self) -> None:
        """Raise what parsing the text raises (a YAML error, a template that is no mapping)."""
        self._run(lambda b: None, lambda w: w.template())

    def resource_names(self) -> Set[str]:
        """The logical ids of `Resources` (a ValueError when it is no mapping)."""
        names: Set[str] = self._run(
            lambda b: frozenset(b.names), lambda w: frozenset(w.template().resource_ids())
        )
        return names

    def template_for(self, logical: str) -> sam.Template:
        """A template in which resource `logical` is as in the whole text (properties, their
        exact lines); other resources may be missing from it."""
        found: sam.Template = self._run(lambda b: b.template_for(logical), lambda w: w.template())
        return found

    def document(self) -> Any:
        """The text as `sam.cfn_load` reads it (raising what it raises)."""
        return self._run(lambda b: b.document(), lambda w: sam.cfn_load(w.current))

    def references(self, logical: str) -> list[es.Invoker]:
        """`event_sources.references` of the document (after `document()` succeeded)."""
        found: list[es.Invoker] = self._run(
            lambda b: b.references(logical),
            lambda w: es.references(sam.cfn_load(w.current), logical),
        )
        return found

    # the edits: those of `untangle.sam`, on the text as it is now
    def add_resources(self, block: str) -> None:
        self._run(
            lambda b: b.add_resources(block),
            lambda w: w.edit(lambda t: sam.add_resources(t, block)),
        )

    def add_environment(self, logical: str, key: str, value_yaml: str) -> None:
        self._run(
            lambda b: b.edit_resource(
                logical, lambda t: sam.add_environment(t, logical, key, value_yaml)
            ),
            lambda w: w.edit(lambda t: sam.add_environment(t, logical, key, value_yaml)),
        )

    def add_policy(self, logical: str, policy_yaml: list[str]) -> None:
        self._run(
            lambda b: b.add_policy(logical, policy_yaml),
            lambda w: w.edit(lambda t: sam.add_policy(t, logical, policy_yaml)),
        )

    def take_event(self, logical: str, event: str, indent: int) -> str:
        taken: list[str] = []

        def take(text: str) -> str:
            new, block = sam.take_event(text, logical, event, indent)
            taken.append(block)
            return new

        taken.clear()
        self._run(lambda b: b.edit_resource(logical, take), lambda w: w.edit(take))
        return taken[-1]

    def enable_bucket_eventbridge(self, logical: str) -> None:
        self._run(
            lambda b: b.edit_resource(logical, lambda t: sam.enable_bucket_eventbridge(t, logical)),
            lambda w: w.edit(lambda t: sam.enable_bucket_eventbridge(t, logical)),
        )

    def remove_resource(self, logical: str) -> None:
        self._run(
            lambda b: b.remove_resource(logical),
            lambda w: w.edit(lambda t: sam.remove_resource(t, logical)),
        )


class _WholeText:
    """The template as one text, every edit re-parsing it (as migrate always did)."""

    def __init__(self, text: str, undo: list[str] | None = None) -> None:
        self.current = text
        self.undo: list[str] = undo or []  # the text before each edit since the last commit
        self._parsed: tuple[str, sam.Template] | None = None

    def template(self) -> sam.Template:
        if self._parsed is None or self._parsed[0] is not self.current:
            self._parsed = (self.current, sam.Template.parse(self.current))
        return self._parsed[1]

    def edit(self, change: Callable[[str], str]) -> None:
        new = change(self.current)
        self.undo.append(self.current)
        self.current = new

    def savepoint(self) -> int:
        return len(self.undo)

    def rollback(self, to: int) -> None:
        if to < len(self.undo):
            self.current = self.undo[to]
            del self.undo[to:]

    def commit(self) -> None:
        self.undo.clear()


@dataclass(eq=False)
class _Block:
    """Lines of the template: the part above the first resource, one resource (its key line
    up to the next resource's), resources migrate added, or the part below `Resources`."""

    lines: list[str]
    names: list[str] = field(default_factory=list)  # the resources it declares now
    mini: sam.Template | None = None  # its small document, as last parsed
    context: int = 0  # how many lines of `mini` come after the block


class _Blocks:
    """The template cut into blocks (see the module's docstring)."""

    def __init__(self, text: str) -> None:
        if not text.endswith("\n") or _ODD_BREAKS.search(text):
            raise _Unsegmentable("line breaks")
        try:
            root = sam.compose(text)
        except yaml.YAMLError as exc:
            raise _Unsegmentable("not YAML") from exc
        if not isinstance(root, yaml.MappingNode) or not _unique_keys(root):
            raise _Unsegmentable("no mapping")
        resources = _value(root, "Resources")
        if (
            not isinstance(resources, yaml.MappingNode)
            or resources.flow_style
            or not resources.value
            or not _unique_keys(resources)
            or any(k.value == _SENTINEL for k, _ in resources.value)
            or _has_alias(root)
            or any(_inserts_into_flow(v) for _, v in resources.value)
        ):
            raise _Unsegmentable("Resources")
        lines = text.splitlines(keepends=True)
        starts = [int(k.start_mark.line) for k, _ in resources.value]
        end = sam._block_end(text, resources)
        self.blocks = [_Block(lines[: starts[0]])]
        for i, (key, _) in enumerate(resources.value):
            stop = starts[i + 1] if i + 1 < len(starts) else end
            self.blocks.append(_Block(lines[starts[i] : stop], [str(key.value)]))
        self.blocks.append(_Block(lines[end:]))
        # where each resource of the text is, and what it read as, for the block check below
        self.where = {str(k.value): i + 1 for i, (k, _) in enumerate(resources.value)}
        self.names: dict[str, None] = dict.fromkeys(self.where)
        for i, (key, value) in enumerate(resources.value):
            mini = self._mini(i + 1)
            if not _same_tree(value, _value(mini.resources(), key.value), starts[i] - 1):
                raise _Unsegmentable(f"{key.value} reads otherwise on its own")
        self._undo: list[Undo] = []
        # the document as `cfn_load` reads it, kept as the edits change it
        self._document: Any = None
        self._document_error: Exception | None = None
        self._position: dict[str, int] = {}
        self._output_position: dict[str, int] = {}
        self._mentions: dict[str, set[tuple[str, str]]] = {}
        try:
            self._document = sam.cfn_construct(root)
        except Exception as exc:  # raised again, as `cfn_load` raised it
            self._document_error = exc
        else:
            if not isinstance(self._document, dict) or not isinstance(
                self._document.get("Resources"), dict
            ):
                raise _Unsegmentable("document")
            for name, value in self._document["Resources"].items():
                self._place(name, value)
            outputs = self._document.get("Outputs")
            for name, value in outputs.items() if isinstance(outputs, dict) else ():
                self._output_position[name] = len(self._output_position)
                self._mention(("Outputs", name), value)
        # the machines whose starter policy the text may hold (see `add_policy`)
        self._starter_refs = sorted(set(_STARTER_RESOURCE.findall(text)))

    # the transaction
    def savepoint(self) -> int:
        return len(self._undo)

    def _apply(self, steps: Callable[[Undo], None]) -> None:
        """One edit: its steps, undone together (and at once when one of them raises)."""
        undo: Undo = []
        try:
            steps(undo)
        except BaseException:
            for step in reversed(undo):
                step()
            raise
        self._undo.append(undo)

    def rollback(self, to: int) -> None:
        while len(self._undo) > to:
            for step in reversed(self._undo.pop()):
                step()

    def commit(self) -> None:
        self._undo.clear()

    def as_whole_text(self) -> _WholeText:
        """The same template and open transaction, as a whole text."""
        current = self.text()
        before: list[str] = []
        while self._undo:
            for step in reversed(self._undo.pop()):
                step()
            before.append(self.text())
        before.reverse()
        return _WholeText(current, before)

    # reading
    def text(self) -> str:
        return "".join(line for block in self.blocks for line in block.lines)

    def document(self) -> Any:
        if self._document_error is not None:
            raise self._document_error
        return self._document

    def references(self, logical: str) -> list[es.Invoker]:
        """Only the entries that hold `logical` (or its role) as a word can name it."""
        document = self.document()
        if not _WORD.fullmatch(logical):
            return es.references(document, logical)
        keys = self._mentions.get(logical, set()) | self._mentions.get(logical + "Role", set())
        resources = document["Resources"]
        outputs = document.get("Outputs")
        named = sorted(
            (k for section, k in keys if section == "Resources" and k in resources),
            key=self._position.__getitem__,
        )
        shown: dict[str, Any] = {"Resources": {k: resources[k] for k in named}}
        if isinstance(outputs, dict):
            listed = sorted(
                (k for section, k in keys if section == "Outputs" and k in outputs),
                key=self._output_position.__getitem__,
            )
            shown["Outputs"] = {k: outputs[k] for k in listed}
        return es.references(shown, logical)

    def template_for(self, logical: str) -> sam.Template:
        return self._mini(self._index_of(logical))

    # editing
    def edit_resource(self, logical: str, change: Callable[[str], str]) -> None:
        """`change` (a `untangle.sam` edit of resource `logical`) on the resource's block."""
        index = self._index_of(logical)
        mini = self._mini(index)
        lines = self._spliced(index, mini, change(mini.text))

        def steps(undo: Undo) -> None:
            self._replace(index, lines, undo)
            self._refresh(index, logical, undo)

        self._apply(steps)

    def add_policy(self, logical: str, policy_yaml: list[str]) -> None:
        # `sam.add_policy` adds nothing when the text holds the policy already; only a text
        # holding `Resource: !Ref M…` for the policy's machine M can, elsewhere than this block
        for machine in _STARTER_RESOURCE.findall("\n".join(policy_yaml)):
            at = bisect.bisect_left(self._starter_refs, machine)
            if at < len(self._starter_refs) and self._starter_refs[at].startswith(machine):
                whole = self.text()
                if sam.add_policy(whole, logical, policy_yaml) == whole:
                    self._undo.append([])
                    return
        self.edit_resource(logical, lambda t: sam.add_policy(t, logical, policy_yaml))

    def add_resources(self, block: str) -> None:
        """`sam.add_resources`: after the last line of the last resource, before the comments
        and blank lines that follow it."""
        inserted = ("\n" + block.rstrip("\n") + "\n").splitlines(keepends=True)
        if _ODD_BREAKS.search("".join(inserted)):
            raise _Unsegmentable("line breaks")
        last = next(i for i in range(len(self.blocks) - 2, 0, -1) if self.blocks[i].names)
        mini = self._mini(last)
        entries = [(k, v) for k, v in mini.resources().value if k.value != _SENTINEL]
        cut = sam._block_end(mini.text, entries[-1][1]) - 1
        tail = self.blocks[last].lines[cut:]
        added = _Block(inserted + tail)
        # the new resources as they read in place (their block, then what follows it)
        context = self._context(last)
        probe = sam.compose(_HEADER + "".join(added.lines) + "".join(context))
        new = _value(probe, "Resources") if isinstance(probe, yaml.MappingNode) else None
        if not isinstance(new, yaml.MappingNode) or not _unique_keys(new) or _has_alias(new):
            raise _Unsegmentable("added resources")
        names = [str(k.value) for k, _ in new.value if k.value != _SENTINEL]
        if any(name in self.names for name in names):
            raise _Unsegmentable("a resource declared twice")
        values = []
        if self._document is not None:
            try:
                values = [sam.cfn_construct(v) for k, v in new.value if k.value != _SENTINEL]
            except Exception as exc:  # the whole text will say what it is
                raise _Unsegmentable("added resources do not read") from exc
        added.names = names

        def steps(undo: Undo) -> None:
            self._replace(last, self.blocks[last].lines[:cut], undo)
            self.blocks.insert(last + 1, added)
            undo.append(lambda: self.blocks.remove(added))
            for name in names:
                self.names[name] = None
                undo.append(lambda name=name: self.names.pop(name))  # type: ignore[misc]
            for name, value in zip(names, values):
                self._place(name, value)
                undo.append(lambda name=name: self._document["Resources"].pop(name))  # type: ignore[misc]

        self._apply(steps)

    def remove_resource(self, logical: str) -> None:
        """`sam.remove_resource`: its lines, and the blank lines after them (which may be the
        first of the next blocks)."""
        index = self._index_of(logical)
        mini = self._mini(index)
        start, end = sam._entry_lines(mini.text, mini.resources(), logical)
        lines = self.blocks[index].lines
        rest = lines[end - 1 :]

        def steps(undo: Undo) -> None:
            self._replace(index, lines[: start - 1] + _without_leading_blanks(rest), undo)
            following, blank = index + 1, all(not line.strip() for line in rest)
            while blank and following < len(self.blocks):
                after = self.blocks[following].lines
                self._replace(following, _without_leading_blanks(after), undo)
                following, blank = following + 1, all(not line.strip() for line in after)
            block = self.blocks[index]
            block.names = []
            del self.names[logical]

            def restore() -> None:
                block.names = [logical]
                self.names[logical] = None

            undo.append(restore)
            if self._document is not None:
                undo.append(self._take_out(logical))

        self._apply(steps)

    def _take_out(self, logical: str) -> Callable[[], None]:
        """Remove resource `logical` from the document; what puts it back where it was (a
        dict keeps the order of its keys, and so does the document)."""
        resources: dict[str, Any] = self._document["Resources"]
        value = resources.pop(logical)

        def put_back() -> None:
            items = list(resources.items())
            resources.clear()
            for key, item in items:
                if self._position[key] > self._position[logical] and logical not in resources:
                    resources[logical] = value
                resources[key] = item
            resources.setdefault(logical, value)

        return put_back

    # the blocks
    def _index_of(self, logical: str) -> int:
        index = self.where.get(logical)
        if index is None or logical not in self.blocks[index].names:
            raise _Unsegmentable(f"{logical} is not a resource of the text as it was")
        return index

    def _context(self, index: int) -> list[str]:
        """The lines after block `index` up to the next token, its line as a sentinel key."""
        found: list[str] = []
        for following in range(index + 1, len(self.blocks)):
            for line in self.blocks[following].lines:
                body = line.strip()
                if body and not body.startswith("#"):
                    column = len(line) - len(line.lstrip(" "))
                    found.append(" " * column + _SENTINEL + ": null\n")
                    return found
                found.append(line)
        return found

    def _mini(self, index: int) -> sam.Template:
        """Block `index` as a small document of its own (see the module's docstring)."""
        block = self.blocks[index]
        context = self._context(index)
        text = _HEADER + "".join(block.lines) + "".join(context)
        if block.mini is None or block.mini.text != text:
            try:
                block.mini = sam.Template.parse(text)
                block.mini.resources()
            except (yaml.YAMLError, ValueError) as exc:
                raise _Unsegmentable("a block does not read on its own") from exc
            block.context = len(context)
        return block.mini

    def _spliced(self, index: int, mini: sam.Template, edited: str) -> list[str]:
        """The block's lines in `edited` (its small document after an edit), which must have
        left the header and the lines below the block as they were."""
        before = mini.text.splitlines(keepends=True)
        after = edited.splitlines(keepends=True)
        context = self.blocks[index].context
        below = len(after) - context
        if (
            after[:1] != before[:1]
            or after[below:] != before[len(before) - context :]
            or _ODD_BREAKS.search(edited)
        ):
            raise _Unsegmentable("an edit outside its block")
        return after[1:below]

    def _replace(self, index: int, lines: list[str], undo: Undo) -> None:
        block = self.blocks[index]
        old = block.lines
        block.lines = lines
        block.mini = None

        def restore() -> None:
            block.lines = old
            block.mini = None

        undo.append(restore)
        for machine in _STARTER_RESOURCE.findall("".join(lines)):
            at = bisect.bisect_left(self._starter_refs, machine)
            if at == len(self._starter_refs) or self._starter_refs[at] != machine:
                self._starter_refs.insert(at, machine)  # kept on undo: it only asks for a look

    def _refresh(self, index: int, logical: str, undo: Undo) -> None:
        """The document's value of resource `logical`, read again from its block."""
        if self._document is None:
            return
        mini = self._mini(index)
        try:
            value = sam.cfn_construct(_value(mini.resources(), logical))
        except Exception as exc:  # the whole text will say what it is
            raise _Unsegmentable("an edited resource does not read") from exc
        resources = self._document["Resources"]
        old = resources[logical]
        resources[logical] = value
        self._mention(("Resources", logical), value)
        undo.append(lambda: resources.__setitem__(logical, old))

    def _place(self, name: str, value: Any) -> None:
        """Resource `name` enters the document, after those already in it."""
        self._document["Resources"][name] = value
        self._position.setdefault(name, len(self._position))
        self._mention(("Resources", name), value)

    def _mention(self, entry: tuple[str, str], value: Any) -> None:
        """Index the words of an entry's strings: a `!Ref`, `!GetAtt`, `${…}` or `DependsOn`
        naming a resource holds the resource's name as a word. Kept on undo (an entry found
        that no longer names it is read again and dropped)."""
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                for word in _WORD.findall(item):
                    self._mentions.setdefault(word, set()).add(entry)
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)


def _value(mapping: yaml.Node, key: str) -> yaml.Node | None:
    """The value of the first entry `key` of a mapping node (as `sam.Template.get`)."""
    if not isinstance(mapping, yaml.MappingNode):
        return None
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v  # type: ignore[no-any-return]
    return None


def _unique_keys(mapping: yaml.MappingNode) -> bool:
    keys = [k.value for k, _ in mapping.value if isinstance(k, yaml.ScalarNode)]
    return len(keys) == len(mapping.value) == len(set(keys))


def _has_alias(root: yaml.Node) -> bool:
    """Whether a node is reached twice (`*alias` composes to the anchored node itself)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return True
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack += [k, v]
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return False


def _inserts_into_flow(resource: yaml.Node) -> bool:
    """Whether an edit could insert lines into a flow collection of the resource: one over
    several lines (an insertion lands before its closing bracket), or a resource, Environment,
    Variables or Policies written inline."""
    if isinstance(resource, (yaml.MappingNode, yaml.SequenceNode)) and resource.flow_style:
        return True
    props = _value(resource, "Properties")
    environment = _value(props, "Environment") if props is not None else None
    for node in (environment, _value(environment, "Variables") if environment else None):
        if isinstance(node, yaml.MappingNode) and node.flow_style and node.value:
            return True
    policies = _value(props, "Policies") if props is not None else None
    if isinstance(policies, yaml.SequenceNode) and policies.flow_style and policies.value:
        return True
    stack = [resource]
    while stack:
        node = stack.pop()
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            if node.flow_style and node.end_mark.line != node.start_mark.line:
                return True
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    stack += [k, v]
            else:
                stack.extend(node.value)
    return False


def _same_tree(whole: yaml.Node, alone: yaml.Node | None, shift: int) -> bool:
    """Whether a resource's node in its small document is its node in the whole text: the
    same nodes, values and tags, every mark `shift` lines further down."""
    stack: list[tuple[yaml.Node, yaml.Node | None]] = [(whole, alone)]
    while stack:
        a, b = stack.pop()
        if (
            b is None
            or type(a) is not type(b)
            or a.tag != b.tag
            or a.start_mark.line != b.start_mark.line + shift
            or a.start_mark.column != b.start_mark.column
            or a.end_mark.line != b.end_mark.line + shift
            or a.end_mark.column != b.end_mark.column
        ):
            return False
        if isinstance(a, yaml.ScalarNode):
            if a.value != b.value:
                return False
        else:
            if getattr(a, "flow_style", None) != getattr(b, "flow_style", None) or len(
                a.value
            ) != len(b.value):
                return False
            if isinstance(a, yaml.MappingNode):
                for (ka, va), (kb, vb) in zip(a.value, b.value):
                    stack += [(ka, kb), (va, vb)]
            else:
                stack.extend(zip(a.value, b.value))
    return True


def _without_leading_blanks(lines: list[str]) -> list[str]:
    skip = 0
    while skip < len(lines) and not lines[skip].strip():
        skip += 1
    return lines[skip:]
