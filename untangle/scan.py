"""The scan recipe: files → candidate bytes → facts (parallel, cached) → program → findings.

Only this module and the CLI touch the disk.
"""

from __future__ import annotations

import fnmatch
import gc
import os
import pickle
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from untangle.analysis.program import Program
from untangle.cache import FactsCache
from untangle.discover import Discovered, SourceFile, discover, module_name
from untangle.facts.model import ModuleFacts, SourceError
from untangle.facts.source import parse_facts, screened_facts
from untangle.findings import Finding, check, selected_rules
from untangle.templates import TemplateHandler, read_template
from untangle.tree_memo import FileNote, TreeMemo, current_stamp, stamp_of

# A file is parsed up front when it may invoke (`.invoke…` appears in it: the only way to call a
# client method) or may be a handler; helpers they reach are parsed on demand while linking.
_HANDLER_DEF = re.compile(
    rb"def\s+(?:lambda_handler|handler)\s*\(|def\s+\w+\s*\(\s*\w*event\w*\s*,\s*\w*(?:context|ctx)"
)
_PARALLEL_BYTES = 2_000_000

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ScanOptions:
    include: tuple[str, ...] = ("*.py",)
    exclude: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    handler_patterns: tuple[str, ...] = ()
    # import roots every module has (layers built elsewhere), relative to `base`
    extra_paths: tuple[str, ...] = ()
    cache_dir: str | None = None
    jobs: int = 0  # 0: one per core
    max_file_size: int = 10 * 1024 * 1024
    base: str = "."


@dataclass
class ScanResult:
    findings: list[Finding]
    errors: list[SourceError]
    files_scanned: int
    handlers: list[str] = field(default_factory=list)


@dataclass
class LoadedTree:
    """The scanned tree, linked: what scan's rules and plan's builder both start from."""

    program: Program
    errors: list[SourceError]
    files_scanned: int
    templates: list[TemplateHandler]


def scan(
    paths: Sequence[str], options: ScanOptions, progress: Progress | None = None
) -> ScanResult:
    rules = selected_rules(options.select, options.ignore)
    memo = TreeMemo.load(options.cache_dir, _identity(paths, options))
    known = memo.unchanged_result()
    if isinstance(known, ScanResult):
        if progress is not None:
            progress(known.files_scanned, known.files_scanned)
        return known
    with _no_cycle_collection():
        tree = _load_tree(paths, options, progress, memo)
        findings = check(tree.program, rules)
    unique_errors = sorted(set(tree.errors), key=lambda e: (e.path, e.line or 0, e.message))
    result = ScanResult(findings, unique_errors, tree.files_scanned, tree.program.handlers)
    memo.save(result)
    return result


def load_tree(
    paths: Sequence[str], options: ScanOptions, progress: Progress | None = None
) -> LoadedTree:
    with _no_cycle_collection():
        return _load_tree(paths, options, progress, TreeMemo(None))


def _identity(paths: Sequence[str], options: ScanOptions) -> tuple[object, ...]:
    """What a scan's result depends on besides the files: where it runs, what it was asked."""
    return (os.getcwd(), tuple(paths), replace(options, cache_dir=None, jobs=0))


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Loading builds hundreds of thousands of objects (syntax trees, facts) and frees nothing
    that refers to itself: the cycle collector would walk them again and again for nothing,
    more often the larger the tree (scans were superlinear in its size). Objects that already
    exist (the imported modules) are moved out of its sight too."""
    if not gc.isenabled():
        yield
        return
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def _load_tree(
    paths: Sequence[str], options: ScanOptions, progress: Progress | None, memo: TreeMemo
) -> LoadedTree:
    found = _discover(paths, options, memo)
    errors: list[SourceError] = list(found.errors)
    by_module = {source.module: source for source in found.sources}
    by_file = {os.path.abspath(source.path): source for source in found.sources}

    template_handlers: set[tuple[str, str]] = set()
    template_functions: list[TemplateHandler] = []
    import_roots = [
        ("", prefix)
        for path in options.extra_paths
        if (prefix := _package_of(os.path.join(options.base, path), found.root)) is not None
    ]
    template_packages: set[str] = set()
    template_names: set[tuple[str, str, str]] = set()
    for template in found.templates:
        handlers = _template(template, memo)
        if isinstance(handlers, SourceError):
            errors.append(handlers)
            continue
        for handler in handlers:
            template_functions.append(handler)
            source = by_file.get(handler.file)
            if source is not None and handler.python:
                template_handlers.add((source.module, handler.function))
                if handler.function_name:
                    template_names.add((source.module, handler.function, handler.function_name))
            importer = _package_of(handler.code_dir, found.root)
            if importer is not None and source is not None and handler.python:
                template_packages.add(importer)
            for layer in handler.layers:
                prefix = _package_of(layer, found.root)
                if importer is not None and prefix is not None:
                    import_roots.append((importer, prefix))
    handler_modules = {module for module, _ in template_handlers}

    cache = FactsCache(options.cache_dir)
    extra_handler = _pattern_defs(options.handler_patterns)
    candidates: list[tuple[SourceFile, FileNote, bytes | None]] = []
    notes: dict[str, FileNote] = {}
    total = len(found.sources)
    for done, source in enumerate(found.sources, 1):
        note, data = _note(source, options.max_file_size, extra_handler, cache, memo, errors)
        if progress is not None and done % 200 == 0:
            progress(done, total)
        if note is None:
            continue
        if note.error is not None:
            errors.append(note.error)
        if note.too_large:
            continue
        notes[source.module] = note
        if note.prefiltered or source.module in handler_modules:
            candidates.append((source, note, data))
        elif note.pattern_handler:
            handler_modules.add(source.module)
            candidates.append((source, note, data))

    parsed = _parse_all(candidates, cache, options, errors, handler_modules)
    modules = [m for m in parsed if m.relevant or m.module in handler_modules]
    preloaded = {m.module: m for m in parsed}

    def load(module: str) -> ModuleFacts | None:
        if module in preloaded:
            return preloaded[module]
        source = by_module.get(module)
        note = notes.get(module)
        if source is None or note is None:
            return None
        return _lazy_facts(source, note, cache, options.max_file_size, errors)

    program = Program(
        modules,
        loader=load,
        module_names=by_module,
        template_handlers=template_handlers,
        handler_patterns=options.handler_patterns,
        import_roots=sorted(set(import_roots)),
        template_packages=sorted(template_packages),
        template_names=sorted(template_names),
    ).link()
    cache.save()
    if progress is not None:
        progress(total, total)
    return LoadedTree(program, errors, total, template_functions)


def _discover(paths: Sequence[str], options: ScanOptions, memo: TreeMemo) -> Discovered:
    """The files under `paths`: the last walk's, when no folder on it changed."""
    found = memo.unchanged_discovery()
    if found is None:
        found = discover(
            paths,
            options.include,
            options.exclude,
            options.base,
            on_stat=memo.record_folder if memo.enabled else None,
        )
        memo.record_discovery(found)
    return found


def _template(path: str, memo: TreeMemo) -> list[TemplateHandler] | SourceError:
    known, handlers = memo.template(path)
    if known:
        return handlers  # type: ignore[no-any-return]
    stamp = current_stamp(path) if memo.enabled else None  # before reading: never too new
    handlers = read_template(path)
    if memo.enabled:
        memo.record_template(path, None if isinstance(handlers, SourceError) else stamp, handlers)
    return handlers


def _note(
    source: SourceFile,
    limit: int,
    extra_handler: re.Pattern[bytes] | None,
    cache: FactsCache,
    memo: TreeMemo,
    errors: list[SourceError],
) -> tuple[FileNote | None, bytes | None]:
    """What the prefilter needs of a file, and its bytes when they had to be read (None, None:
    it cannot be read)."""
    if memo.enabled:
        known = memo.file_note(source.path)
        if known is not None:
            return known, None
    try:
        with open(source.path, "rb") as handle:
            stamp = stamp_of(os.fstat(handle.fileno())) if memo.enabled else None
            data = handle.read(limit + 1)
    except OSError as exc:
        errors.append(SourceError(source.path, None, f"cannot read: {exc.strerror or exc}"))
        memo.record_file(source.path, None)
        return None, None
    if len(data) > limit:
        error = None
        if b"invoke" in data:
            error = SourceError(
                source.path, None, f"skipped: larger than {_size(limit)} (max-file-size)"
            )
        note = FileNote(stamp, None, False, False, too_large=True, error=error)
        memo.record_file(source.path, note)
        return note, None
    prefiltered = b".invoke" in data or bool(
        (b"event" in data or b"handler" in data) and _HANDLER_DEF.search(data)
    )
    note = FileNote(
        stamp,
        cache.key(data, source.module, source.path) if prefiltered else None,
        prefiltered,
        extra_handler is not None and extra_handler.search(data) is not None,
    )
    memo.record_file(source.path, note)
    return note, data


def _lazy_facts(
    source: SourceFile, note: FileNote, cache: FactsCache, limit: int, errors: list[SourceError]
) -> ModuleFacts | None:
    """A module the linker reached: its cached facts without reading it, when it is known."""
    if note.key is not None:
        cached = cache.get(note.key)
        if isinstance(cached, ModuleFacts):
            return cached
    data = _read(source, limit, errors)
    if data is None:
        return None
    return _parse_one(source, data, cache, errors)


def _package_of(folder: str, root: str) -> str | None:
    """The dotted prefix of the modules in `folder` inside the scanned tree (`""` for its root);
    None outside it."""
    folder, root = os.path.abspath(folder), os.path.abspath(root)
    if folder != root and not folder.startswith(root.rstrip(os.sep) + os.sep):
        return None
    return module_name(os.path.join(folder, "__init__.py"), root).removesuffix("__init__")


def _read(source: SourceFile, limit: int, errors: list[SourceError]) -> bytes | None:
    try:
        with open(source.path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        errors.append(SourceError(source.path, None, f"cannot read: {exc.strerror or exc}"))
        return None
    if len(data) > limit:
        if b"invoke" in data:
            errors.append(
                SourceError(
                    source.path,
                    None,
                    f"skipped: larger than {_size(limit)} (max-file-size)",
                )
            )
        return None
    return data


def _parse_one(
    source: SourceFile, data: bytes, cache: FactsCache, errors: list[SourceError]
) -> ModuleFacts | None:
    key = cache.key(data, source.module, source.path)
    result = cache.get(key)
    if result is None:
        result = parse_facts(data, source.path, source.module)
        cache.put(key, result)
    if isinstance(result, SourceError):
        errors.append(result)
        return None
    return result


def _parse_job(
    items: list[tuple[bytes, str, str, bool]],
) -> list[ModuleFacts | SourceError | None]:
    return [_candidate_facts(*item) for item in items]


def _candidate_facts(
    data: bytes, path: str, module: str, named_handler: bool
) -> ModuleFacts | SourceError | None:
    """Facts of a prefilter candidate; None when it cannot be relevant (a module a template or
    `handler-patterns` names is linked whatever it holds)."""
    if named_handler:
        return parse_facts(data, path, module)
    return screened_facts(data, path, module)


def _parse_all(
    candidates: Iterable[tuple[SourceFile, FileNote, bytes | None]],
    cache: FactsCache,
    options: ScanOptions,
    errors: list[SourceError],
    handler_modules: set[str],
) -> list[ModuleFacts]:
    """Facts of the candidates, from the cache or parsed; a cached module known to be
    irrelevant (and not named by a template) is skipped: it is loaded later if reached."""
    # in the order of the candidates, whichever were cached: the program is linked in it
    found: list[ModuleFacts | SourceError | None] = []
    missing: list[tuple[SourceFile, bytes, str, bool]] = []
    slots: list[int] = []
    for source, note, data in candidates:
        key = note.key
        if key is None:  # named by a template or handler-patterns only: hashed when needed
            data = data if data is not None else _read(source, options.max_file_size, errors)
            if data is None:
                continue
            key = cache.key(data, source.module, source.path)
        if cache.relevance(key) is False and source.module not in handler_modules:
            continue
        cached = cache.get(key)
        if cached is None:
            if data is None:  # unchanged since it was noted, but its facts were never kept
                data = _read(source, options.max_file_size, errors)
                if data is None:
                    continue
                key = cache.key(data, source.module, source.path)
            missing.append((source, data, key, source.module in handler_modules))
            slots.append(len(found))
        found.append(cached)
    jobs = options.jobs
    workers = jobs or os.cpu_count() or 1
    results: list[ModuleFacts | SourceError | None] | None = None
    if workers > 1 and sum(len(d) for _, d, _, _ in missing) > _PARALLEL_BYTES:
        results = _parse_in_pool(missing, workers)
    if results is None:
        results = [_candidate_facts(data, s.path, s.module, named) for s, data, _, named in missing]
    for (_, _, key, _), result, slot in zip(missing, results, slots):
        if result is None:
            # screened out: nothing is extracted or stored until the linker reaches it
            cache.set_relevance(key, False)
            continue
        cache.put(key, result)
        if not isinstance(result, SourceError):
            cache.set_relevance(key, result.relevant)
        found[slot] = result
    errors += [f for f in found if isinstance(f, SourceError)]
    return [f for f in found if isinstance(f, ModuleFacts)]


def _parse_in_pool(
    missing: list[tuple[SourceFile, bytes, str, bool]], workers: int
) -> list[ModuleFacts | SourceError | None] | None:
    # biggest first, dealt round-robin, so both workers finish together
    order = sorted(range(len(missing)), key=lambda i: -len(missing[i][1]))
    chunks: list[list[int]] = [order[i :: workers * 4] for i in range(workers * 4)]
    results: list[ModuleFacts | SourceError | None] = [None] * len(missing)
    done = [False] * len(missing)
    try:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [
                (
                    chunk,
                    pool.submit(
                        _parse_job,
                        [
                            (missing[i][1], missing[i][0].path, missing[i][0].module, missing[i][3])
                            for i in chunk
                        ],
                    ),
                )
                for chunk in chunks
                if chunk
            ]
            for chunk, future in futures:
                try:
                    chunk_results = future.result()
                except (RecursionError, pickle.PicklingError):
                    continue  # facts too deep to send back: parsed again in this process
                for index, result in zip(chunk, chunk_results):
                    results[index] = result
                    done[index] = True
    except (BrokenProcessPool, OSError):
        return None
    complete: list[ModuleFacts | SourceError | None] = []
    for index, found in enumerate(results):
        if not done[index]:
            source, data, _, named = missing[index]
            found = _candidate_facts(data, source.path, source.module, named)
        complete.append(found)
    return complete


def _size(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):g} MB"
    if limit >= 1024:
        return f"{limit / 1024:g} KB"
    return f"{limit} bytes"


def _pattern_defs(patterns: Sequence[str]) -> re.Pattern[bytes] | None:
    """`def <name>(` for the function names that `handler-patterns` can match."""
    if not patterns:
        return None
    names = [
        fnmatch.translate(p.rsplit(".", 1)[-1]).removesuffix(r"\Z").removeprefix("(?s:")
        for p in patterns
    ]
    alternatives = "|".join(f"(?:{n.removesuffix(')')})" for n in names)
    return re.compile(rf"def\s+(?:{alternatives})\s*\(".encode())
