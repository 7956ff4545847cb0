"""How generated Python is laid out: lines that fit the project's line length, literals that
stay literals whatever text (a template's logical id, a function name) is pasted into them.

`fit` splits a too-long line the way Black and `ruff format` do (right-hand split: the last
bracket pair's contents on their own line, then one element per line with a trailing comma),
and keeps a split only when the code parses to the same syntax tree as before.
"""

from __future__ import annotations

import ast
import io
import textwrap
import tokenize

DEFAULT_LINE_LENGTH = 88
_OPENING = {"(": ")", "[": "]", "{": "}"}


def escaped(text: str) -> str:
    """`text` as it may stand between the quotes of a string literal (any quote style, triple
    or not): quotes and backslashes escaped, line breaks and other unprintable characters as
    escape sequences. Evaluating the literal gives `text` back."""
    out = []
    for char in text:
        if char in "\\\"'":
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def comment_text(text: str) -> str:
    """`text` on one comment line: line breaks and unprintable characters as escapes."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def docstring(paragraphs: list[str], indent: str, width: int) -> str:
    """A triple-quoted docstring of `paragraphs` (blank lines between them), each wrapped to
    `width` at `indent` (the first line at the statement, the others at `indent`)."""
    lines: list[str] = []
    for number, paragraph in enumerate(paragraphs):
        if number:
            lines.append("")
        room = width - len(indent) - (3 if number == 0 else 0)
        wrapped = textwrap.wrap(
            escaped(paragraph),
            width=max(room, 20),
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines += wrapped or [""]
    if len(indent) + len(lines[-1]) + 3 + (3 if len(lines) == 1 else 0) > width:
        lines.append("")  # the closing quotes on a line of their own
    text = "\n".join(f"{indent}{line}" if line and i else line for i, line in enumerate(lines))
    return f'"""{text}{indent if not lines[-1] else ""}"""'


def double_quoted(source: str) -> str:
    """`source` with its single-quoted string literals in double quotes, as Black and `ruff
    format` write them (`ast.unparse` prints `'…'`): a literal holding a quote of either kind
    stays as it is, as does anything inside an f-string; the code's syntax tree is unchanged."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return source
    fstring_start = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    lines = source.split("\n")
    swaps: list[tuple[int, int, int]] = []  # (row, first column, last column) of each literal
    depth = 0
    opened: tuple[int, int] = (0, 0)
    for token in tokens:
        if token.type == fstring_start:
            depth += 1
            if depth == 1:
                opened = token.start
            continue
        if token.type == fstring_end:
            depth -= 1
            if depth == 0 and opened[0] == token.end[0]:
                text = lines[opened[0] - 1][opened[1] : token.end[1]]
                if _swappable(text):
                    swaps.append((opened[0], opened[1], token.end[1]))
            continue
        one_line = token.start[0] == token.end[0]
        if token.type == tokenize.STRING and not depth and one_line and _swappable(token.string):
            swaps.append((token.start[0], token.start[1], token.end[1]))
    for row, first, last in sorted(swaps, reverse=True):
        line = lines[row - 1]
        literal = line[first:last]
        quote = literal.index("'")
        literal = f'{literal[:quote]}"{literal[quote + 1 : -1]}"'
        lines[row - 1] = line[:first] + literal + line[last:]
    changed = "\n".join(lines)
    try:
        same = ast.dump(ast.parse(changed)) == ast.dump(ast.parse(source))
    except SyntaxError:
        return source
    return changed if same else source


def _swappable(literal: str) -> bool:
    """A one-line `'…'` literal (any prefix) whose text holds no quote character."""
    prefix = len(literal) - len(literal.lstrip("rRbBuUfF"))
    body = literal[prefix:]
    if len(body) < 2 or body[0] != "'" or body[-1] != "'" or body.startswith("'''"):
        return False
    return "'" not in body[1:-1] and '"' not in body[1:-1]


def fit(source: str, width: int) -> str:
    """`source` (complete statements, `\\n` line endings) with every one-line statement longer
    than `width` split at its brackets, as a formatter would; what cannot be split stays."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return source
    lines = source.split("\n")
    single = _one_line_statements(tokens)
    for row in sorted(single, reverse=True):
        line = lines[row - 1]
        if len(line) <= width:
            continue
        split = _split(line, width)
        if split != [line] and _same_code(line, split):
            lines[row - 1 : row] = split
    return "\n".join(lines)


def _one_line_statements(tokens: list[tokenize.TokenInfo]) -> set[int]:
    """Rows holding a whole logical line and nothing else (no comment, no multi-line string)."""
    rows: set[int] = set()
    start: int | None = None
    clean = True
    for token in tokens:
        if token.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.NL, tokenize.ENCODING):
            continue
        if start is None:
            start, clean = token.start[0], True
        if token.type == tokenize.COMMENT or token.start[0] != token.end[0]:
            clean = False
        if token.type == tokenize.NEWLINE:
            if clean and token.start[0] == start:
                rows.add(start)
            start = None
        elif token.type == tokenize.ENDMARKER:
            start = None
    return rows


def _split(line: str, width: int, in_brackets: bool = False) -> list[str]:
    """The split of one line a formatter would make, recursively; `[line]` when it has nothing
    to split at. First the right-hand split (the last bracket pair's contents on their own
    lines); when its first line is still too long, inside brackets the split before each
    operator of the lowest priority, and for `return x` / `name = x` the value in parentheses."""
    if len(line) <= width:
        return [line]
    if in_brackets:
        # inside brackets a formatter splits at the operators first (a delimiter split)
        split = _operator_split(line, width)
        if split != [line] and _overflow(split, width) == 0:
            return split
    best = _right_hand_split(line, width)
    if len(best[0]) <= width:
        return best
    others: list[list[str]] = []
    if in_brackets:
        others.append(_operator_split(line, width))
    else:
        wrapped = _parenthesized_value(line, width)
        if wrapped is not None:
            others.append(wrapped)
    for other in others:
        if _overflow(other, width) < _overflow(best, width):
            best = other
    return best


def _overflow(lines: list[str], width: int) -> int:
    return sum(max(0, len(line) - width) for line in lines)


def _right_hand_split(line: str, width: int) -> list[str]:
    indent = line[: len(line) - len(line.lstrip())]
    pair = _last_bracket_pair(line)
    if pair is None:
        return [line]
    opening, closing = pair
    head, body, tail = line[: opening + 1], line[opening + 1 : closing].strip(), line[closing:]
    if not body:
        return [line]
    inner = indent + "    "
    if len(inner) + len(body) <= width:
        return [head, inner + body, indent + tail]
    elements = _top_level_elements(body)
    # a lone element keeps no trailing comma: `x[a,]` and `(a,)` would mean a tuple
    trailing = "," if len(elements) > 1 else ""
    exploded = [head]
    for number, element in enumerate(elements):
        comma = "," if number < len(elements) - 1 else trailing
        exploded += _split(inner + element + comma, width, in_brackets=True)
    return [*exploded, indent + tail]


def _parenthesized_value(line: str, width: int) -> list[str] | None:
    """`return (` / the value / `)`: the parentheses a formatter adds to split a long value."""
    indent = line[: len(line) - len(line.lstrip())]
    statement = line.strip()
    for prefix in ("return ",):
        if statement.startswith(prefix):
            keyword, value = prefix, statement[len(prefix) :]
            break
    else:
        target, equals, value = statement.partition(" = ")
        if not equals or not target.isidentifier():
            return None
        keyword = f"{target} = "
    inner = indent + "    "
    return [f"{indent}{keyword}(", *_split(inner + value, width, in_brackets=True), indent + ")"]


# binary operators from the lowest priority up: a formatter splits before those of the lowest
_PRIORITIES = (
    {"or"},
    {"and"},
    {"<", ">", "==", ">=", "<=", "!=", "in", "is"},
    {"|"},
    {"^"},
    {"&"},
    {"<<", ">>"},
    {"+", "-"},
    {"*", "/", "//", "%", "@"},
)


_WORD_OPERATORS = frozenset({"or", "and", "in", "is"})


def _operator_split(line: str, width: int) -> list[str]:
    """The line split before each top-level operator of the lowest priority it has, each part
    on its own line (inside brackets, where a line may break anywhere)."""
    indent = line[: len(line) - len(line.lstrip())]
    text = line.strip()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text + "\n").readline))
    except (tokenize.TokenError, SyntaxError):
        return [line]
    depth = 0
    places: list[tuple[int, int]] = []  # (priority, column)
    previous: tokenize.TokenInfo | None = None
    for token in tokens:
        if token.type == tokenize.OP and token.string in _OPENING:
            depth += 1
        elif token.type == tokenize.OP and token.string in _OPENING.values():
            depth -= 1
        elif depth == 0 and token.string in ("if", "else", "for", "lambda", "not", ":", "="):
            return [line]  # a conditional, a comprehension, a lambda, a keyword: left alone
        elif depth == 0 and (
            token.type == tokenize.OP or token.string in ("or", "and", "in", "is")
        ):
            unary = previous is None or (
                previous.type == tokenize.OP and previous.string not in ")]}"
            )
            for priority, operators in enumerate(_PRIORITIES):
                if token.string in operators and not unary:
                    places.append((priority, token.start[1]))
        if token.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            previous = token
    if not places:
        return [line]
    lowest = min(priority for priority, _ in places)
    cuts = [column for priority, column in places if priority == lowest]
    parts, start = [], 0
    for cut in cuts:
        parts.append(text[start:cut].strip())
        start = cut
    parts.append(text[start:].strip())
    trailing = ""
    if parts[-1].endswith(","):
        parts[-1], trailing = parts[-1][:-1].rstrip(), ","
    lines = [indent + part for part in parts]
    lines[-1] += trailing
    return [piece for part in lines for piece in _split(part, width, in_brackets=True)]


def _last_bracket_pair(line: str) -> tuple[int, int] | None:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    offset = len(line) - len(line.lstrip())
    stack: list[tuple[str, int]] = []
    last: tuple[int, int] | None = None
    for token in tokens:
        if token.type != tokenize.OP:
            continue
        if token.string in _OPENING:
            stack.append((token.string, token.start[1]))
        elif token.string in _OPENING.values():
            if not stack or _OPENING[stack[-1][0]] != token.string:
                return None
            _, column = stack.pop()
            if not stack:
                last = (column + offset, token.start[1] + offset)
    return last if not stack else None


def _top_level_elements(body: str) -> list[str]:
    """`body` split at its depth-0 commas (a trailing comma dropped)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(body + "\n").readline))
    cuts: list[int] = []
    depth = 0
    for token in tokens:
        if token.type != tokenize.OP:
            continue
        if token.string in _OPENING:
            depth += 1
        elif token.string in _OPENING.values():
            depth -= 1
        elif token.string == "," and depth == 0:
            cuts.append(token.start[1])
    parts, start = [], 0
    for cut in cuts:
        parts.append(body[start:cut].strip())
        start = cut + 1
    parts.append(body[start:].strip())
    return [part for part in parts if part]


def _same_code(line: str, split: list[str]) -> bool:
    """The split line parses to what the line did (a trailing comma may not make a tuple, a
    generator argument may not take one)."""

    def tree(text: str) -> str | None:
        text = textwrap.dedent(text)
        if text.rstrip().endswith(":"):
            text += "\n    pass"
        try:
            return ast.dump(ast.parse(text))
        except SyntaxError:
            return None

    before = tree(line)
    return before is not None and before == tree("\n".join(split))
