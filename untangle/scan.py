"""The scan recipe: files → candidate bytes → facts (parallel, cached) → program → findings.

Only this module and the CLI touch the disk (with the caches: `cache.py` keeps facts by content,
`tree_memo.py` what the last scan of the same tree saw).
"""

from __future__ import annotations

import fnmatch
import gc
import os
import pickle
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from untangle.analysis.program import Program
from untangle.cache import FactsCache
from untangle.discover import Discovered, SourceFile, absolute_paths, discover, module_name
from untangle.facts.model import ModuleFacts, SourceError
from untangle.facts.source import parse_facts, screened_facts
from untangle.files import read_bytes, read_bytes_and_stat
from untangle.findings import Finding, check, selected_rules
from untangle.templates import TemplateHandler, read_template
from untangle.tree_memo import FileNote, TreeMemo, current_stamp, stamp_of

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

# A file is parsed up front when it may invoke (`.invoke…` appears in it: the only way to call a
# client method) or may be a handler; helpers they reach are parsed on demand while linking.
_HANDLER_DEF = re.compile(
    rb"def\s+(?:lambda_handler|handler)\s*\(|def\s+\w+\s*\(\s*\w*event\w*\s*,\s*\w*(?:context|ctx)"
)
# candidates waiting to be parsed that are worth sending to a worker process (forking one and
# sending the facts back costs about as much as parsing this much here)
_WORKER_BYTES = 200_000
_MAX_WORKERS = 8

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
    # every Python file found, as shown to the user (migrate looks for importers of a module)
    sources: tuple[str, ...] = ()


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
    by_file = dict(zip(absolute_paths(s.path for s in found.sources), found.sources))

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
    candidates = _Candidates(cache, options, errors, handler_modules)
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
            candidates.add(source, note, data)
        elif note.pattern_handler:
            handler_modules.add(source.module)
            candidates.add(source, note, data)

    parsed = candidates.facts()
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
    return LoadedTree(
        program, errors, total, template_functions, tuple(s.path for s in found.sources)
    )


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
        data, info = read_bytes_and_stat(source.path, limit)
        stamp = stamp_of(info) if memo.enabled else None
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
        data = read_bytes(source.path, limit)
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


class _Candidates:
    """Facts of the prefilter's candidates, in their order (the program is linked in it), from
    the cache or parsed. A cached module known to be irrelevant (and not named by a template) is
    skipped: it is loaded later if reached. Once the candidates waiting to be parsed are worth a
    process of their own, they are parsed by worker processes while the tree is still being
    read; a few small files are parsed here, at the end."""

    def __init__(
        self,
        cache: FactsCache,
        options: ScanOptions,
        errors: list[SourceError],
        handler_modules: set[str],
    ) -> None:
        self.cache, self.options, self.errors = cache, options, errors
        self.handler_modules = handler_modules
        self.workers = options.jobs or os.cpu_count() or 1
        self.found: list[ModuleFacts | SourceError | None] = []
        # (slot in `found`, cache key, the job to parse it)
        self.missing: list[tuple[int, str, tuple[bytes, str, str, bool]]] = []
        self.waiting: list[int] = []  # indices into `missing` not yet sent to a worker
        self.waiting_bytes = 0
        self.pool: ProcessPoolExecutor | None = None
        self.pool_failed = False
        self.sent: list[tuple[list[int], Future[list[ModuleFacts | SourceError | None]]]] = []

    def add(self, source: SourceFile, note: FileNote, data: bytes | None) -> None:
        limit = self.options.max_file_size
        key = note.key
        if key is None:  # named by a template or handler-patterns only: hashed when needed
            data = data if data is not None else _read(source, limit, self.errors)
            if data is None:
                return
            key = self.cache.key(data, source.module, source.path)
        named = source.module in self.handler_modules
        if self.cache.relevance(key) is False and not named:
            return
        cached = self.cache.get(key)
        if cached is None:
            if data is None:  # unchanged since it was noted, but its facts were never kept
                data = _read(source, limit, self.errors)
                if data is None:
                    return
                key = self.cache.key(data, source.module, source.path)
            self.waiting.append(len(self.missing))
            self.missing.append((len(self.found), key, (data, source.path, source.module, named)))
            self.waiting_bytes += len(data)
            if self.workers > 1 and self.waiting_bytes >= _WORKER_BYTES:
                self._send()
        self.found.append(cached)

    def _send(self) -> None:
        if self.pool is None and not self.pool_failed:
            # imported here: multiprocessing costs a warm scan more than it does
            from concurrent.futures import ProcessPoolExecutor

            try:
                # forked all at once: a many-core machine need not fork one per core for this
                self.pool = ProcessPoolExecutor(max_workers=min(self.workers, _MAX_WORKERS))
            except (OSError, ValueError):
                self.pool_failed = True
        if self.pool is None:
            return
        chunk, self.waiting, self.waiting_bytes = self.waiting, [], 0
        try:
            jobs = [self.missing[i][2] for i in chunk]
            self.sent.append((chunk, self.pool.submit(_parse_job, jobs)))
        except (RuntimeError, OSError):  # a broken pool is a RuntimeError
            self.pool_failed = True
            self.waiting = chunk + self.waiting

    def facts(self) -> list[ModuleFacts]:
        results: dict[int, ModuleFacts | SourceError | None] = {}
        if self.pool is not None:
            if self.waiting_bytes >= _WORKER_BYTES // 4:
                self._send()  # a last batch worth sending
            for chunk, future in self.sent:
                # a dead worker, or facts too deep to send back: those are parsed here
                with suppress(RuntimeError, RecursionError, pickle.PicklingError, OSError):
                    results.update(zip(chunk, future.result()))
            self.pool.shutdown()
        for index, (_, _, job) in enumerate(self.missing):
            if index not in results:
                results[index] = _candidate_facts(*job)
        for index, (slot, key, _) in enumerate(self.missing):
            result = results[index]
            if result is None:
                # screened out: nothing is extracted or stored until the linker reaches it
                self.cache.set_relevance(key, False)
                continue
            self.cache.put(key, result)
            if not isinstance(result, SourceError):
                self.cache.set_relevance(key, result.relevant)
            self.found[slot] = result
        self.errors += [f for f in self.found if isinstance(f, SourceError)]
        return [f for f in self.found if isinstance(f, ModuleFacts)]


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
