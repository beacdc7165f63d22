"""The page's drawing modules (``web/static/js/draw``) as one script, for hosts that take a single string.

A notebook cannot follow a module's relative imports: anywidget ships a widget's code as one ES module
string (``_esm``) and an HTML output runs an inline ``<script>``. So the notebook's views (the widgets in
:mod:`convlens.widgets`, the explanation's player in :mod:`convlens.lab.explain_html`) are small entry
modules that import the page's drawing modules, and this file inlines those imports: each module becomes
a function scope that returns its exports, evaluated in dependency order, and each
``import { a, b as c } from "./x.js"`` becomes ``const { a, b: c } = <x's exports>``. The drawing modules
stay the one copy, served as they are to the page.

It understands exactly the syntax the modules use (and says so when a module strays): one-line
``import { ... } from "./relative.js";`` and ``export function|const|let|class NAME`` /
``export { a, b as c };``. No bare specifiers, ``export default`` or import cycles.

>>> code = esm(DRAW / "format.js")
>>> "export default" in code, code.count("import ")
(True, 0)
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from convlens.errors import ConfigError

__all__ = ["DRAW", "PACKAGE", "draw_css", "esm", "script"]

#: The convlens package folder (imports may not leave it).
PACKAGE = Path(__file__).resolve().parents[1]
#: The page's drawing modules.
DRAW = PACKAGE / "web" / "static" / "js" / "draw"
#: Their stylesheet (the page links it; the notebook inlines it).
DRAW_CSS = PACKAGE / "web" / "static" / "css" / "draw.css"

_IMPORT = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*"(\.\.?/[^"]+\.js)"\s*;?[ \t]*$', re.M)
_ANY_IMPORT = re.compile(r"^\s*import\b.*$", re.M)
_EXPORT_DECL = re.compile(r"^export\s+((?:async\s+)?(?:function\*?|const|let|class)\s+([A-Za-z_$][\w$]*))", re.M)
_EXPORT_LIST = re.compile(r"^export\s*\{([^}]*)\}\s*;?[ \t]*$", re.M)
_ANY_EXPORT = re.compile(r"^\s*export\b.*$", re.M)
_NAME = re.compile(r"^[A-Za-z_$][\w$]*$")


@dataclass(frozen=True)
class _Module:
    path: Path
    body: str
    deps: tuple[Path, ...]
    exports: tuple[tuple[str, str], ...]  # (local name, exported name)


def _pairs(names: str, path: Path, what: str) -> list[tuple[str, str]]:
    """``a, b as c`` -> [("a", "a"), ("b", "c")]."""
    out = []
    for part in (p.strip() for p in names.split(",")):
        if not part:
            continue
        words = part.split()
        if len(words) == 1:
            words = [words[0], "as", words[0]]
        if len(words) != 3 or words[1] != "as" or not all(_NAME.match(w) for w in (words[0], words[2])):
            raise ConfigError(f"jsbundle: {path.name}: cannot read the {what} {part!r}; write `name` or `a as b`.")
        out.append((words[0], words[2]))
    return out


def _var(path: Path) -> str:
    return "__cl_" + re.sub(r"\W", "_", path.relative_to(PACKAGE).with_suffix("").as_posix())


def _resolve(base: Path, spec: str, importer: str) -> Path:
    target = (base / spec).resolve()
    if PACKAGE not in target.parents or not target.is_file():
        raise ConfigError(f"jsbundle: {importer} imports {spec!r}, which is not a file inside the convlens package.")
    return target


def _parse(source: str, base: Path, name: str) -> _Module:
    """One module's body with its imports turned into destructurings and its exports collected."""
    deps: list[Path] = []

    def replace_import(match: re.Match[str]) -> str:
        dep = _resolve(base, match.group(2), name)
        deps.append(dep)
        pairs = _pairs(match.group(1), Path(name), "import")
        names = ", ".join(a if a == b else f"{a}: {b}" for a, b in pairs)
        return f"const {{ {names} }} = {_var(dep)};"

    body = _IMPORT.sub(replace_import, source)
    stray = _ANY_IMPORT.search(body)
    if stray:
        raise ConfigError(
            f'jsbundle: {name}: only one-line `import {{ ... }} from "./x.js";` is bundled, got {stray.group(0)!r}.'
        )
    exports = [(m.group(2), m.group(2)) for m in _EXPORT_DECL.finditer(body)]
    body = _EXPORT_DECL.sub(r"\1", body)
    for match in _EXPORT_LIST.finditer(body):
        exports += _pairs(match.group(1), Path(name), "export")
    body = _EXPORT_LIST.sub("", body)
    stray = _ANY_EXPORT.search(body)
    if stray:
        raise ConfigError(
            f"jsbundle: {name}: only `export function|const|let|class NAME` and `export {{ ... }};` are bundled, "
            f"got {stray.group(0)!r}."
        )
    return _Module(base / name, body, tuple(deps), tuple(exports))


def _order(entry: _Module) -> list[_Module]:
    """Every module the entry needs, each once, dependencies first (post-order); cycles are refused."""
    done: dict[Path, _Module] = {}
    visiting: list[Path] = [entry.path]

    def visit(module: _Module) -> None:
        for dep in module.deps:
            if dep in done:
                continue
            if dep in visiting:
                chain = " -> ".join(p.name for p in [*visiting[visiting.index(dep) :], dep])
                raise ConfigError(f"jsbundle: import cycle {chain}; the bundle needs an order.")
            visiting.append(dep)
            visit(_read(dep))
            visiting.pop()
            done[dep] = _read(dep)

    visit(entry)
    return list(done.values())


@functools.lru_cache(maxsize=64)
def _read(path: Path) -> _Module:
    return _parse(path.read_text(encoding="utf-8"), path.parent, path.name)


def _scope(module: _Module) -> str:
    exports = ", ".join(local if local == name else f"{name}: {local}" for local, name in module.exports)
    rel = module.path.relative_to(PACKAGE).as_posix() if PACKAGE in module.path.parents else module.path.name
    head = f'// ---- {rel}\nconst {_var(module.path)} = (() => {{\n"use strict";\n'
    return f"{head}{module.body}\nreturn {{ {exports} }};\n}})();\n"


def _modules(entry: _Module) -> str:
    return "".join(_scope(m) for m in _order(entry))


@functools.lru_cache(maxsize=16)
def esm(entry: Path) -> str:
    """``entry`` and everything it imports as one ES module whose default export is ``entry``'s exports.

    That is anywidget's contract when ``entry`` exports ``render`` (``export default { render }``).
    """
    module = _read(entry.resolve())
    return _modules(module) + _scope(module) + f"export default {_var(module.path)};\n"


def script(source: str, base: Path = DRAW) -> str:
    """A classic script (no ``import``/``export`` left): the modules ``source`` imports, then ``source``'s body.

    ``source`` is module code whose relative imports are resolved against ``base``; it may not export.
    The whole is wrapped in one function scope, so it runs as an inline ``<script>`` in any host.
    """
    module = _parse(source, base.resolve(), "<inline>")
    if module.exports:
        raise ConfigError("jsbundle: an inline script has nothing to export to; remove its `export`.")
    return f'(() => {{\n"use strict";\n{_modules(module)}{module.body}\n}})();\n'


@functools.lru_cache(maxsize=8)
def draw_css(scope: str) -> str:
    """The drawing modules' stylesheet with its variables on ``scope`` (a selector) instead of ``:root``.

    So a notebook's own page keeps its variables; only the view's root element and its children see ours.
    """
    css = DRAW_CSS.read_text(encoding="utf-8")
    if css.count(":root {") != 1:
        raise ConfigError(f"jsbundle: {DRAW_CSS.name} must declare its variables in one `:root {{` block.")
    return css.replace(":root {", f"{scope} {{", 1)
