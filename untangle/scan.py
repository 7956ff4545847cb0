"""The scan recipe: files → candidate bytes → facts (parallel, cached) → program → findings.

Only this module and the CLI touch the disk.
"""

from __future__ import annotations

import fnmatch
import os
import pickle
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from untangle.analysis.program import Program
from untangle.cache import FactsCache
from untangle.discover import SourceFile, discover, module_name
from untangle.facts.model import ModuleFacts, SourceError
from untangle.facts.source import parse_facts
from untangle.files import read_bytes
from untangle.findings import Finding, check, selected_rules
from untangle.templates import TemplateHandler, read_template

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
    tree = load_tree(paths, options, progress)
    findings = check(tree.program, rules)
    unique_errors = sorted(set(tree.errors), key=lambda e: (e.path, e.line or 0, e.message))
    return ScanResult(findings, unique_errors, tree.files_scanned, tree.program.handlers)


def load_tree(
    paths: Sequence[str], options: ScanOptions, progress: Progress | None = None
) -> LoadedTree:
    found = discover(paths, options.include, options.exclude, options.base)
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
        handlers = read_template(template)
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
    candidates: list[tuple[SourceFile, bytes]] = []
    total = len(found.sources)
    for done, source in enumerate(found.sources, 1):
        data = _read(source, options.max_file_size, errors)
        if data is not None and (
            b".invoke" in data
            or source.module in handler_modules
            or ((b"event" in data or b"handler" in data) and _HANDLER_DEF.search(data))
        ):
            candidates.append((source, data))
        elif data is not None and extra_handler is not None and extra_handler.search(data):
            handler_modules.add(source.module)
            candidates.append((source, data))
        if progress is not None and done % 200 == 0:
            progress(done, total)

    parsed = _parse_all(candidates, cache, options.jobs, errors, handler_modules)
    modules = [m for m in parsed if m.relevant or m.module in handler_modules]
    preloaded = {m.module: m for m in parsed}

    def load(module: str) -> ModuleFacts | None:
        if module in preloaded:
            return preloaded[module]
        source = by_module.get(module)
        if source is None:
            return None
        data = _read(source, options.max_file_size, errors)
        if data is None:
            return None
        return _parse_one(source, data, cache, errors)

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


def _parse_job(items: list[tuple[bytes, str, str]]) -> list[ModuleFacts | SourceError]:
    return [parse_facts(data, path, module) for data, path, module in items]


def _parse_all(
    candidates: Iterable[tuple[SourceFile, bytes]],
    cache: FactsCache,
    jobs: int,
    errors: list[SourceError],
    handler_modules: set[str],
) -> list[ModuleFacts]:
    """Facts of the candidates, from the cache or parsed; a cached module known to be
    irrelevant (and not named by a template) is skipped: it is loaded later if reached."""
    # in the order of the candidates, whichever were cached: the program is linked in it
    found: list[ModuleFacts | SourceError | None] = []
    missing: list[tuple[SourceFile, bytes, str]] = []
    slots: list[int] = []
    for source, data in candidates:
        key = cache.key(data, source.module, source.path)
        if cache.relevance(key) is False and source.module not in handler_modules:
            continue
        cached = cache.get(key)
        if cached is None:
            missing.append((source, data, key))
            slots.append(len(found))
        found.append(cached)
    workers = jobs or os.cpu_count() or 1
    results: list[ModuleFacts | SourceError] | None = None
    if workers > 1 and sum(len(d) for _, d, _ in missing) > _PARALLEL_BYTES:
        results = _parse_in_pool(missing, workers)
    if results is None:
        results = [parse_facts(data, s.path, s.module) for s, data, _ in missing]
    for (_, _, key), result, slot in zip(missing, results, slots):
        cache.put(key, result)
        if not isinstance(result, SourceError):
            cache.set_relevance(key, result.relevant)
        found[slot] = result
    errors += [f for f in found if isinstance(f, SourceError)]
    return [f for f in found if isinstance(f, ModuleFacts)]


def _parse_in_pool(
    missing: list[tuple[SourceFile, bytes, str]], workers: int
) -> list[ModuleFacts | SourceError] | None:
    # biggest first, dealt round-robin, so both workers finish together
    order = sorted(range(len(missing)), key=lambda i: -len(missing[i][1]))
    chunks: list[list[int]] = [order[i :: workers * 4] for i in range(workers * 4)]
    results: list[ModuleFacts | SourceError | None] = [None] * len(missing)
    try:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [
                (
                    chunk,
                    pool.submit(
                        _parse_job,
                        [(missing[i][1], missing[i][0].path, missing[i][0].module) for i in chunk],
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
    except (BrokenProcessPool, OSError):
        return None
    complete: list[ModuleFacts | SourceError] = []
    for index, found in enumerate(results):
        if found is None:
            source, data, _ = missing[index]
            found = parse_facts(data, source.path, source.module)
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
