"""Diagrams of an Amazon States Language state machine: Mermaid, Graphviz DOT and terminal text.

All three take the definition as a JSON-loaded dict, JSONPath or JSONata flavoured, and return a
string; nothing is read or printed. `graph()` is the model the Mermaid and DOT forms are drawn
from:

- every state is a node; `start` leads to `StartAt`, `End: true` leads to an `end` node;
- Next is a plain edge, each Choice rule an edge labelled with its condition (`$.total > 1000`,
  or the JSONata `Condition` without its `{% %}`), Default an edge labelled `otherwise`, each Catch
  a dashed edge labelled with its ErrorEquals;
- Retry is an annotation on the state (`retry`, the attempts, interval and backoff rate);
- a Parallel or Map state is a node that forks into one subgraph per branch (a Map: one for its
  ItemProcessor/Iterator) and a `join` node they end in; the state's own Next/End/Catch leave from
  that join node.

Node ids are derived from the state names (`s_` + ASCII letters/digits/underscores, made unique),
so any state name is safe; labels are escaped for each format.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from untangle.render import _asl
from untangle.render._asl import Json

StatePath = tuple[str, ...]
"""A state's names from the top: `("Name",)` at the top level, `("Par", "2", "Name")` in the
second branch of Parallel `Par`, `("Map", "items", "Name")` in Map `Map`'s processor. The same
tuples without the last name identify scopes (`()` is the top level)."""

START_ID = "n_start"
END_ID = "n_end"
LEGEND_ID = "n_legend"


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # "start" | "end" | "join" | "missing" | the ASL Type in lower case ("task", ...)
    title: str
    details: tuple[str, ...] = ()
    cluster: str | None = None  # the innermost subgraph holding it
    path: StatePath | None = None  # for state nodes


@dataclass(frozen=True)
class Cluster:
    id: str
    label: str
    owner: str  # the Parallel/Map node it belongs to
    parent: str | None  # the enclosing subgraph


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    kind: str  # "start" | "branch" | "next" | "end" | "choice" | "default" | "catch"
    label: str = ""

    @property
    def dashed(self) -> bool:
        return self.kind == "catch"


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    clusters: tuple[Cluster, ...]
    edges: tuple[Edge, ...]
    ids: Mapping[StatePath, str]  # state path -> its node id
    exits: Mapping[StatePath, str]  # state path -> the node its transitions leave from: its
    # own node, or for a Parallel/Map its join node (which the branches' `End: true` lead to)


# --- The model -----------------------------------------------------------------------------


def details(state: Json, times: str = "\u00d7", legend: str | None = None) -> tuple[str, ...]:
    """The annotation lines under a state's name: what it does, then its retries (but the
    retrier the legend describes once for every Task)."""
    kind = _asl.kind(state)
    lines: list[str]
    if kind == "Task":
        lines = [f"task {_asl.task_target(state)}"]
        pattern = _asl.integration_pattern(state)
        if pattern == "waitForTaskToken":
            lines[0] += " (waits for callback)"
        elif pattern == "sync":
            lines[0] += " (waits for job)"
        if "TimeoutSeconds" in state:
            lines.append(f"timeout {_asl.show(state['TimeoutSeconds'])} s")
    elif kind == "Wait":
        lines = [_asl.wait_summary(state)]
    elif kind == "Fail":
        error = state.get("Error", state.get("ErrorPath"))
        lines = [f"fail {_asl.show(error)}" if error is not None else "fail"]
    elif kind == "Parallel":
        count = len(_asl.branches(state))
        lines = [f"parallel, {count} branch{'' if count == 1 else 'es'}"]
    elif kind == "Map":
        lines = [_asl.map_summary(state)]
    elif kind in ("Pass", "Choice", "Succeed"):
        lines = [kind.lower()]
    else:
        lines = [f"unknown type {kind}"]
    for retrier in _asl.retriers(state):
        summary = _asl.retry_summary(retrier, times)
        if summary == legend:
            lines.append("\u21bb" if times == "\u00d7" else "(retries)")
        else:
            lines.append(summary)
    return tuple(lines)


def shared_retrier(definition: Json, times: str = "\u00d7") -> str | None:
    """The Lambda service retrier the Tasks share (untangle puts it on every Lambda Task):
    drawn once, in a legend, instead of on each Task."""
    counts: dict[str, int] = {}

    def walk(scope: Json) -> None:
        for state in _asl.states(scope).values():
            for retrier in _asl.retriers(state):
                summary = _asl.retry_summary(retrier, times)
                if summary.endswith("Lambda service errors"):
                    counts[summary] = counts.get(summary, 0) + 1
            for branch in _asl.branches(state):
                walk(branch)
            processor = _asl.processor(state)
            if processor is not None:
                walk(processor)

    walk(definition)
    if not counts:
        return None
    return max(sorted(counts), key=lambda k: counts[k])


def legend_text(retrier: str) -> str:
    return f"\u21bb on a Task: {retrier}"


@dataclass
class _Builder:
    nodes: list[Node] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    ids: dict[StatePath, str] = field(default_factory=dict)
    exits: dict[StatePath, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=lambda: {START_ID, END_ID, LEGEND_ID})
    # Choice state name -> the Python condition of each rule, in order (labels the reader wrote)
    conditions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    legend: str | None = None

    def fresh(self, prefix: str, name: str) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[:40] or "x"
        base = candidate = f"{prefix}_{slug}"
        n = 2
        while candidate in self.used:  # slugs never contain "__", so suffixes cannot collide
            candidate = f"{base}__{n}"
            n += 1
        self.used.add(candidate)
        return candidate

    def target(self, scope: StatePath, name: str, cluster: str | None) -> str:
        """The node of state `name` in `scope`, or a `missing` node for a dangling reference."""
        path = (*scope, name)
        if path not in self.ids:
            self.ids[path] = self.fresh("s", name)
            self.nodes.append(Node(self.ids[path], "missing", name, ("missing state",), cluster))
        return self.ids[path]

    def scope(
        self,
        definition: Json,
        path: StatePath,
        cluster: str | None,
        entry: Edge,
        exit_id: str,
    ) -> None:
        states = _asl.states(definition)
        names = _asl.order(definition)
        for name in names:
            self.ids[(*path, name)] = self.fresh("s", name)
        first = _asl.start_at(definition)
        if first is not None:
            dst = self.target(path, first, cluster)
            self.edges.append(Edge(entry.src, dst, entry.kind, entry.label))
        for name in names:
            self.state(path, name, states[name], cluster, exit_id)

    def state(
        self, scope: StatePath, name: str, state: Json, cluster: str | None, exit_id: str
    ) -> None:
        path = (*scope, name)
        node_id = self.ids[path]
        kind = _asl.kind(state)
        self.nodes.append(
            Node(node_id, kind.lower(), name, details(state, legend=self.legend), cluster, path)
        )
        src = node_id
        if kind in ("Parallel", "Map"):
            join = self.fresh("j", name)
            inner: list[tuple[str, str, Json, str]] = []  # (path part, label, scope, edge label)
            if kind == "Parallel":
                for i, branch in enumerate(_asl.branches(state), 1):
                    inner.append((str(i), f"{name}: branch {i}", branch, f"branch {i}"))
            else:
                processor = _asl.processor(state)
                if processor is not None:
                    label = f"{name}: each item, {_asl.concurrency_summary(state)}"
                    inner.append(("items", label, processor, "each item"))
            for part, label, definition, edge_label in inner:
                cid = self.fresh("c", f"{name} {part}")
                self.clusters.append(Cluster(cid, label, node_id, cluster))
                entry = Edge(node_id, "", "branch", edge_label)
                self.scope(definition, (*path, part), cid, entry, join)
            title = "join" if kind == "Parallel" else "collect"
            self.nodes.append(Node(join, "join", title, (), cluster, None))
            src = join
        self.exits[path] = src
        for t in labelled_transitions(name, state, self.conditions):
            if t.target is None:
                self.edges.append(Edge(src, exit_id, "end"))
                continue
            dst = self.target(scope, t.target, cluster)
            label = f"catch {t.label}" if t.kind == "catch" else t.label
            self.edges.append(Edge(src, dst, t.kind, label))


def labelled_transitions(
    name: str, state: Json, conditions: Mapping[str, tuple[str, ...]]
) -> list[_asl.Transition]:
    """`_asl.transitions`, each Choice rule labelled with its Python condition where the plan
    gave one per rule (else with the ASL's own)."""
    found = _asl.transitions(state)
    python = conditions.get(name)
    rules = [t for t in found if t.kind == "choice"]
    if not python or len(python) != len(rules):
        return found
    labels = iter(python)
    return [
        _asl.Transition(t.kind, t.target, next(labels)) if t.kind == "choice" else t for t in found
    ]


def graph(definition: Json, conditions: Mapping[str, tuple[str, ...]] | None = None) -> Graph:
    """The nodes, subgraphs and edges drawn by `mermaid()` and `dot()`."""
    b = _Builder(conditions=conditions or {}, legend=shared_retrier(definition))
    b.nodes.append(Node(START_ID, "start", "start"))
    b.scope(definition, (), None, Edge(START_ID, "", "start"), END_ID)
    if any(e.dst == END_ID for e in b.edges):
        b.nodes.append(Node(END_ID, "end", "end"))
    if b.legend is not None:
        b.nodes.append(Node(LEGEND_ID, "legend", legend_text(b.legend)))
    return Graph(tuple(b.nodes), tuple(b.clusters), tuple(b.edges), b.ids, b.exits)


def _layout(g: Graph) -> Iterator[tuple[int, Node | Cluster | None]]:
    """Nodes in order, each Parallel/Map node followed by its subgraphs' contents, as
    (depth, item); a Cluster opens a subgraph, None closes the innermost one."""
    by_cluster: dict[str | None, list[Node]] = {}
    for node in g.nodes:
        by_cluster.setdefault(node.cluster, []).append(node)
    owned: dict[str, list[Cluster]] = {}
    for c in g.clusters:
        owned.setdefault(c.owner, []).append(c)

    def walk(cluster: str | None, depth: int) -> Iterator[tuple[int, Node | Cluster | None]]:
        for node in by_cluster.get(cluster, []):
            yield depth, node
            for c in owned.get(node.id, []):
                yield depth, c
                yield from walk(c.id, depth + 1)
                yield depth, None

    yield from walk(None, 0)


def _clean(text: str) -> str:
    """One line: control characters (newlines, tabs, ...) become spaces."""
    return "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in text)


# --- Mermaid --------------------------------------------------------------------------------

_MERMAID_ESCAPES = {
    "#": "#35;",
    '"': "#quot;",
    "<": "#lt;",
    ">": "#gt;",
    "&": "#amp;",
    "|": "#124;",
    "`": "#96;",
    "%": "#37;",  # `%%{...}%%` would be read as a directive anywhere in the text
}


def _mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in _clean(text))


def _mermaid_label(node: Node) -> str:
    return '"' + "<br/>".join(_mermaid_text(t) for t in (node.title, *node.details)) + '"'


_MERMAID_SHAPES = {
    "start": ("((", "))"),
    "end": ("((", "))"),
    "join": ("((", "))"),
    "pass": ("(", ")"),
    "choice": ("{", "}"),
    "wait": ("{{", "}}"),
    "succeed": ("([", "])"),
    "fail": ("([", "])"),
    "parallel": ("[[", "]]"),
    "map": ("[[", "]]"),
    "missing": (">", "]"),
    "legend": (">", "]"),
}


def mermaid(definition: Json, conditions: Mapping[str, tuple[str, ...]] | None = None) -> str:
    """A Mermaid `flowchart TD`."""
    g = graph(definition, conditions)
    lines = ["flowchart TD"]
    for depth, item in _layout(g):
        pad = "  " * (depth + 1)
        if item is None:
            lines.append(pad + "end")
        elif isinstance(item, Cluster):
            lines.append(f'{pad}subgraph {item.id}["{_mermaid_text(item.label)}"]')
            lines.append(f"{pad}  direction TB")
        else:
            left, right = _MERMAID_SHAPES.get(item.kind, ("[", "]"))
            lines.append(f"{pad}{item.id}{left}{_mermaid_label(item)}{right}")
    for e in g.edges:
        arrow = "-.->" if e.dashed else "-->"
        label = f'|"{_mermaid_text(e.label)}"|' if e.label else ""
        lines.append(f"  {e.src} {arrow}{label} {e.dst}")
    styles = {
        "succeed": "fill:#dcf5dc,stroke:#2e7d32",
        "fail": "fill:#fbe0e0,stroke:#c62828",
        "choice": "fill:#fff4d6,stroke:#b7791f",
        "wait": "fill:#e3ecfb,stroke:#3559a8",
    }
    for kind, style in styles.items():
        members = [n.id for n in g.nodes if n.kind == kind]
        if members:
            lines.append(f"  classDef {kind} {style}")
            lines.append(f"  class {','.join(members)} {kind}")
    return "\n".join(lines) + "\n"


# --- Graphviz DOT ---------------------------------------------------------------------------


def _dot_text(text: str) -> str:
    return _clean(text).replace("\\", "\\\\").replace('"', '\\"')


_DOT_SHAPES = {
    "start": 'shape=circle, style=filled, fillcolor="#eeeeee"',
    "end": 'shape=doublecircle, style=filled, fillcolor="#eeeeee"',
    "join": "shape=circle, fontsize=9",
    "pass": 'style="rounded,dashed"',
    "choice": 'shape=diamond, style=filled, fillcolor="#fff4d6"',
    "wait": 'shape=hexagon, style=filled, fillcolor="#e3ecfb"',
    "succeed": 'style="rounded,filled", fillcolor="#dcf5dc"',
    "fail": 'style="rounded,filled", fillcolor="#fbe0e0"',
    "parallel": "shape=box3d",
    "map": "shape=box3d",
    "missing": 'shape=note, color="#c62828"',
    "legend": 'shape=note, style=filled, fillcolor="#f5f5f5"',
}


def dot(definition: Json, conditions: Mapping[str, tuple[str, ...]] | None = None) -> str:
    """A Graphviz `digraph` (render with `dot -Tsvg`)."""
    g = graph(definition, conditions)
    lines = [
        "digraph state_machine {",
        "  rankdir=TB;",
        '  graph [fontname="Helvetica", fontsize=11];',
        '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for depth, item in _layout(g):
        pad = "  " * (depth + 1)
        if item is None:
            lines.append(pad + "}")
        elif isinstance(item, Cluster):
            lines.append(f"{pad}subgraph cluster_{item.id} {{")
            lines.append(f'{pad}  label="{_dot_text(item.label)}";')
            lines.append(f'{pad}  style="rounded,dashed";')
        else:
            label = "\\n".join(_dot_text(t) for t in (item.title, *item.details))
            shape = _DOT_SHAPES.get(item.kind)
            node_attrs = f'label="{label}"' + (f", {shape}" if shape else "")
            lines.append(f"{pad}{item.id} [{node_attrs}];")
    for e in g.edges:
        attrs = []
        if e.label:
            attrs.append(f'label="{_dot_text(e.label)}"')
        if e.dashed:
            attrs.append("style=dashed")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"  {e.src} -> {e.dst}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- Terminal text --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Glyphs:
    arrow: str
    tee: str
    last: str
    bar: str
    times: str


_UNICODE = _Glyphs("\u2192", "\u251c", "\u2514", "\u2502", "\u00d7")
_ASCII = _Glyphs("->", "|-", "`-", "|", "x")
_NAME_WIDTH = 24


def text(
    definition: Json,
    conditions: Mapping[str, tuple[str, ...]] | None = None,
    *,
    ascii: bool = False,
) -> str:
    """A readable flow for a terminal, one state a line in order from StartAt.

    The main path reads down from `start`; a state's side exits (Catch, Choice rules, Default)
    are listed under it and the states they lead to follow as their own paragraphs. Parallel
    branches and Map processors are indented under their state. `ascii=True` uses only ASCII
    (`->`, `|-`, `x`, and `\\u` escapes for other characters in names)."""
    glyphs = _ASCII if ascii else _UNICODE
    legend = shared_retrier(definition, glyphs.times)
    out = _TextWriter(glyphs, ascii, conditions=conditions or {}, legend=legend)
    out.scope(definition, "", top=True)
    if legend is not None:
        out.lines += ["", out.clean(legend_text(legend) if not ascii else f"(retries): {legend}")]
    return "\n".join(line.rstrip() for line in out.lines) + "\n"


@dataclass
class _TextWriter:
    g: _Glyphs
    ascii: bool
    lines: list[str] = field(default_factory=list)
    conditions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    legend: str | None = None

    def clean(self, value: str) -> str:
        value = _clean(value)
        if self.ascii:
            value = value.encode("ascii", "backslashreplace").decode("ascii")
        return value

    def describe(self, state: Json) -> str:
        parts = list(details(state, self.g.times, self.legend))
        if _asl.kind(state) == "Fail" and "Cause" in state:
            parts[0] += f" ({_asl.show(state['Cause'])})"
        return self.clean(", ".join(parts))

    def scope(self, definition: Json, prefix: str, top: bool) -> None:
        states = _asl.states(definition)
        names = _asl.order(definition)
        width = min(max((len(self.clean(n)) for n in names), default=0), _NAME_WIDTH)
        visited: set[str] = set()
        heads: list[str] = []
        first = _asl.start_at(definition)
        if top:
            self.lines.append(prefix + "start")
        if first is not None:
            self.chain(states, first, prefix, width, visited, heads, arrow=True, top=top)
        for name in names:  # unreachable states last
            if name not in heads and name not in visited:
                heads.append(name)
        while heads:
            head = heads.pop(0)
            if head in visited:
                continue
            self.lines.append(prefix)
            self.chain(states, head, prefix, width, visited, heads, arrow=False, top=top)

    def chain(
        self,
        states: dict[str, Json],
        name: str,
        prefix: str,
        width: int,
        visited: set[str],
        heads: list[str],
        arrow: bool,
        top: bool,
    ) -> None:
        g = self.g
        while True:
            lead = f" {g.arrow} " if arrow else ""
            shown = self.clean(name)
            column = width + (0 if arrow else len(g.arrow) + 2)
            if name not in states:
                self.lines.append(f"{prefix}{lead}{shown.ljust(column)}  (missing state)")
                return
            if name in visited:
                self.lines.append(f"{prefix}{lead}{shown}  (see above)")
                return
            visited.add(name)
            state = states[name]
            self.lines.append(f"{prefix}{lead}{shown.ljust(column)}  {self.describe(state)}")
            self.nested(state, prefix + " " * (len(g.arrow) + 2) + g.bar + " ")
            outs = labelled_transitions(name, state, self.conditions)
            side = [t for t in outs if t.kind in ("choice", "default", "catch")]
            indent = prefix + " " * (len(g.arrow) + 4)
            for i, t in enumerate(side):
                tee = g.last if i == len(side) - 1 else g.tee
                if t.kind == "catch":
                    what = f"on {t.label}"
                elif t.kind == "choice":
                    what = f"if {t.label}"
                else:
                    what = "otherwise"
                target = t.target or ""
                self.lines.append(
                    f"{indent}{tee} {self.clean(what)} {g.arrow} {self.clean(target)}"
                )
                heads.append(target)
            following = [t for t in outs if t.kind in ("next", "end")]
            if not following:
                return
            if following[0].target is None:
                self.lines.append(f"{prefix} {g.arrow} {'end' if top else 'done'}")
                return
            name = following[0].target
            arrow = True

    def nested(self, state: Json, prefix: str) -> None:
        kind = _asl.kind(state)
        if kind == "Parallel":
            all_branches = _asl.branches(state)
            for i, branch in enumerate(all_branches, 1):
                self.lines.append(f"{prefix}branch {i} of {len(all_branches)}:")
                self.scope(branch, prefix, top=False)
        elif kind == "Map":
            processor = _asl.processor(state)
            if processor is not None:
                self.lines.append(f"{prefix}each item:")
                self.scope(processor, prefix, top=False)
