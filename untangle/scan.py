"""The scan recipe: files → candidate bytes → facts (parallel, cached) → program → findings.

Only this module and the CLI touch the disk (with the caches: `cache.py` keeps facts by content,
`tree_memo.py` what the last scan of the same tree saw).
"""

from __future__ import annotations

import fnmatch
import gc
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from untangle.analysis.program import Program
from untangle.cache import FactsCache
from untangle.discover import Discovered, SourceFile, absolute_paths, discover, module_name
from untangle.facts.model import ModuleFacts, SourceError
from untangle.facts.source import parse_facts, screened_facts
from untangle.files import read_bytes, read_bytes_and_stat
from untangle.findings import Finding, check, selected_rules
from untangle.shared_jobs import SharedJobs
from untangle.templates import TemplateHandler, read_template
from untangle.tree_memo import FileNote, TreeMemo, current_stamp, stamp_of

# A file is parsed up front when it may invoke (`.invoke…` appears in it: the only way to call a
# client method) or may be a handler; helpers they reach are parsed on demand while linking.
_HANDLER_DEF = re.compile(
    rb"def\s+(?:lambda_handler|handler)\s*\(|def\s+\w+\s*\(\s*\w*event\w*\s*,\s*\w*(?:context|ctx)"
)
# a tree with fewer files to read than this is read by this process alone (forking is not free)
_FORK_FILES = 200
# files per share of the reading (shares are taken one at a time by whichever process is free)
_SHARE_FILES = 32
_MAX_PROCESSES = 8

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
    cache = FactsCache(options.cache_dir)
    extra_handler = _pattern_defs(options.handler_patterns)
    # the files are read (by forked processes too) while this one walks the tree, then reads
    # the templates
    reader = _SharedReading(
        _Reading(options.max_file_size, extra_handler, cache, memo), options.jobs
    )
    try:
        return _read_tree(paths, options, progress, memo, cache, reader)
    finally:
        reader.abandon()  # (nothing left to do, unless loading failed half-way)


def _read_tree(
    paths: Sequence[str],
    options: ScanOptions,
    progress: Progress | None,
    memo: TreeMemo,
    cache: FactsCache,
    reader: _SharedReading,
) -> LoadedTree:
    found = _discover(paths, options, memo, reader.add)
    reader.walked()
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

    candidates = _Candidates(options.max_file_size, cache, errors, handler_modules)
    notes: dict[str, FileNote] = {}
    total = len(found.sources)
    for source, read in zip(found.sources, reader.finish(progress)):
        note = read.note
        if note is None:
            errors.append(read.error)  # type: ignore[arg-type]
            memo.record_file(source.path, None)
            continue
        if read.fresh:
            memo.record_file(source.path, note)
        if note.error is not None:
            errors.append(note.error)
        if note.too_large:
            continue
        notes[source.module] = note
        if note.prefiltered or source.module in handler_modules:
            candidates.add(source, read)
        elif note.pattern_handler:
            handler_modules.add(source.module)
            candidates.add(source, read)

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


def _discover(
    paths: Sequence[str],
    options: ScanOptions,
    memo: TreeMemo,
    on_source: Callable[[SourceFile], None],
) -> Discovered:
    """The files under `paths`: the last walk's, when no folder on it changed. `on_source` is
    told each one, in order, as soon as it is known."""
    found = memo.unchanged_discovery()
    if found is not None:
        for source in found.sources:
            on_source(source)
        return found
    found = discover(
        paths,
        options.include,
        options.exclude,
        options.base,
        on_stat=memo.record_folder if memo.enabled else None,
        on_source=on_source,
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


class _Reading:
    """What reading a file needs to know, in every process that reads (forked ones inherit it).
    The templates are not read yet: a module only they name is told apart by `_Candidates`."""

    def __init__(
        self,
        limit: int,
        extra_handler: re.Pattern[bytes] | None,
        cache: FactsCache,
        memo: TreeMemo,
    ) -> None:
        self.limit, self.extra_handler = limit, extra_handler
        self.cache, self.memo = cache, memo


class _Read(NamedTuple):
    """One file as its reader saw it, and a candidate's facts as far as the reader got them."""

    note: FileNote | None  # None: the file cannot be read (`error` says why)
    error: SourceError | None = None
    fresh: bool = True  # read now (not the tree memo's note of an unchanged file)
    key: str | None = None  # a candidate's facts-cache key; None: not looked at as a candidate
    named: bool = False  # linked whatever it holds (`handler-patterns` names it)
    skip: bool = False  # the cache knows it is irrelevant
    parsed: bool = False  # parsed by its reader: `facts` (or `pickled`), None when screened out
    facts: ModuleFacts | SourceError | None = None
    pickled: bytes | None = None  # the facts as the cache keeps them (from it, or kept in it)


def _read_file(source: SourceFile, reading: _Reading) -> _Read:
    """Read and note a file; a candidate's facts from the cache, else parsed (and cached)."""
    try:
        data, info = read_bytes_and_stat(source.path, reading.limit)
    except OSError as exc:
        return _Read(None, SourceError(source.path, None, f"cannot read: {exc.strerror or exc}"))
    stamp = stamp_of(info) if reading.memo.enabled else None
    if len(data) > reading.limit:
        error = None
        if b"invoke" in data:
            error = SourceError(
                source.path, None, f"skipped: larger than {_size(reading.limit)} (max-file-size)"
            )
        return _Read(FileNote(stamp, None, False, False, too_large=True, error=error))
    prefiltered = b".invoke" in data or bool(
        (b"event" in data or b"handler" in data) and _HANDLER_DEF.search(data)
    )
    cache = reading.cache
    key = cache.key(data, source.module, source.path) if prefiltered else None
    pattern = reading.extra_handler is not None and reading.extra_handler.search(data) is not None
    note = FileNote(stamp, key, prefiltered, pattern)
    # as `_load_tree` decides it: a pattern's handler is named when the prefilter left it out
    named = pattern and not prefiltered
    if not prefiltered and not named:
        return _Read(note)
    key = key or cache.key(data, source.module, source.path)
    if not named and cache.relevance(key) is False:
        return _Read(note, key=key, skip=True)
    pickled = cache.get_pickled(key)
    if pickled is not None:
        return _Read(note, key=key, named=named, pickled=pickled)
    facts = _candidate_facts(data, source.path, source.module, named)
    if facts is not None and cache.keeps:
        pickled = cache.pickled(facts)
        if pickled is not None:
            cache.put_pickled(key, pickled)
    return _Read(note, key=key, named=named, parsed=True, facts=facts, pickled=pickled)


def _sendable(read: _Read) -> _Read:
    """A read as a forked reader sends it back: facts pickled (once: as the cache keeps them)."""
    if read.facts is None:
        return read
    pickled = read.pickled or FactsCache.pickled(read.facts)
    if pickled is None:  # too deep to send: the candidate is parsed again by the linking process
        return _Read(read.note, fresh=read.fresh)
    return read._replace(facts=None, pickled=pickled)


class _SharedReading:
    """Every source read (or its note known from the memo), in order, told the sources one by
    one as the walk finds them. Many files are read in shares of consecutive files by this
    process and forked ones together: the helpers are forked once there is enough to read, and
    read while this process goes on walking the tree and then reads the templates."""

    def __init__(self, reading: _Reading, jobs: int) -> None:
        self.reading = reading
        self.reads: list[_Read | None] = []
        self.unread = 0
        self.slots: list[list[int]] = []  # the sources of each share, by index
        self.share: list[SourceFile] = []
        self.processes = min(jobs or os.cpu_count() or 1, _MAX_PROCESSES)
        reading.cache.prepare()  # read once, before forking

        def read_share(share: list[SourceFile]) -> list[_Read]:
            return [_read_file(source, reading) for source in share]

        def sendable(share: list[_Read]) -> list[_Read]:
            return [_sendable(read) for read in share]

        self.shared: SharedJobs[list[SourceFile], list[_Read]] = SharedJobs(
            [], read_share, 0, sendable, more=True
        )

    def add(self, source: SourceFile) -> None:
        memo = self.reading.memo
        known = memo.file_note(source.path) if memo.enabled else None
        self.reads.append(None if known is None else _Read(known, fresh=False))
        if known is not None:
            return
        if not self.share:
            self.slots.append([])
        self.slots[-1].append(len(self.reads) - 1)
        self.share.append(source)
        if len(self.share) == _SHARE_FILES:
            self._add_share()
        self.unread += 1
        if self.unread == _FORK_FILES and self.processes > 1:
            self.shared.start(self.processes - 1)

    def _add_share(self) -> None:
        self.shared.add(self.share)
        self.share = []

    def walked(self) -> None:
        """Every source has been told."""
        if self.share:
            self._add_share()
        self.shared.close()

    def finish(self, progress: Progress | None) -> list[_Read]:
        total, unread, count = len(self.reads), self.unread, len(self.slots)

        def taken(shares: int) -> None:
            if progress is not None:
                progress(total - unread + shares * unread // count, total)

        for slots, share_reads in zip(self.slots, self.shared.finish(taken)):
            for slot, read in zip(slots, share_reads):
                self.reads[slot] = read
        done = [read for read in self.reads if read is not None]
        assert len(done) == total
        return done

    def abandon(self) -> None:
        self.shared.abandon()


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


def _candidate_facts(
    data: bytes, path: str, module: str, named_handler: bool
) -> ModuleFacts | SourceError | None:
    """Facts of a prefilter candidate; None when it cannot be relevant (a module a template or
    `handler-patterns` names is linked whatever it holds)."""
    if named_handler:
        return parse_facts(data, path, module)
    return screened_facts(data, path, module)


class _Candidates:
    """Facts of the prefilter's candidates, in their order (the program is linked in it): as
    their readers found them (cached, or parsed), else from the cache or parsed here (a file
    whose note the tree memo had, whose facts a reader could not send). A cached module known
    to be irrelevant (and not named by a template) is skipped: it is loaded later if reached."""

    def __init__(
        self, limit: int, cache: FactsCache, errors: list[SourceError], handler_modules: set[str]
    ) -> None:
        self.limit, self.cache, self.errors = limit, cache, errors
        self.handler_modules = handler_modules
        self.found: list[ModuleFacts | SourceError | None] = []
        # (slot in `found`, cache key, the job to parse it)
        self.missing: list[tuple[int, str, tuple[bytes, str, str, bool]]] = []

    def add(self, source: SourceFile, read: _Read) -> None:
        named = source.module in self.handler_modules
        facts = read.facts
        if facts is None and read.pickled is not None:
            facts = self.cache.unpickle(read.pickled)
        if (
            read.key is None  # not looked at as a candidate by its reader
            or (read.pickled is not None and facts is None)  # a damaged cache entry
            or read.named > named  # parsed whole where the screen would decide
            # named by a template (read after the files): what the screen left out is parsed
            or (named > read.named and (read.skip or (read.parsed and facts is None)))
        ):
            self._add_unread(source, read.note, named)  # type: ignore[arg-type]
            return
        if read.skip:
            return
        if read.parsed:
            if isinstance(facts, ModuleFacts):
                self.cache.set_relevance(read.key, facts.relevant)
            elif facts is None:
                # screened out: nothing is extracted or stored until the linker reaches it
                self.cache.set_relevance(read.key, False)
        self.found.append(facts)

    def _add_unread(self, source: SourceFile, note: FileNote, named: bool) -> None:
        limit = self.limit
        key = note.key
        data = None
        if key is None:  # named by a template or handler-patterns only: hashed when needed
            data = _read(source, limit, self.errors)
            if data is None:
                return
            key = self.cache.key(data, source.module, source.path)
        if self.cache.relevance(key) is False and not named:
            return
        cached = self.cache.get(key)
        if cached is None:
            if data is None:  # unchanged since it was noted, but its facts were never kept
                data = _read(source, limit, self.errors)
                if data is None:
                    return
                key = self.cache.key(data, source.module, source.path)
            self.missing.append((len(self.found), key, (data, source.path, source.module, named)))
        self.found.append(cached)

    def facts(self) -> list[ModuleFacts]:
        for slot, key, job in self.missing:
            result = _candidate_facts(*job)
            if result is None:
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
