"""The shape of the code: no import cycles, short import chains, no oversized class, and the
web side reaches the daemon only through its door (``motiond.web.door``, whose camera part is
the camera door of ``motiond.control``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.fixtures import REPO

PACKAGE = REPO / "motiond"
# What the web package may import of motiond: the camera door's types, the config's types, the
# on-disk format, what a frame and a motion result are, redaction, and naming threads. Nothing
# that runs the pipeline.
WEB_MAY_IMPORT = {
    "motiond",
    "motiond.config",
    "motiond.control",
    "motiond.frames",
    "motiond.detect.boxes",
    "motiond.detect.motion",
    "motiond.redact",
    "motiond.store.layout",
    "motiond.threads",
    "motiond.units",
    "motiond.capture.nal",  # pure: NAL units of H.264/H.265
    "motiond.record.livefmp4",  # pure: a camera's packets as MP4 segments for the live view
}
DAEMON_INTERNALS = [
    "motiond.cameras",
    "motiond.capture.camera",
    "motiond.store.clips",
    "motiond.daemon",
    "motiond.record.encoders",
    "motiond.notify.homeassistant",
    "motiond.notify.hooks",
    "motiond.notify.mqtt",
    "motiond.notify.mqtt_bridge",
    "motiond.record.preroll",
    "motiond.record.recorder",
    "motiond.store.recovery",
    "motiond.store.retention",
    "motiond.capture.sources",
    "motiond.systemd",
    "motiond.detect.trigger",
    "motiond.notify.upload",
    "motiond.detect.judge",
    "motiond.detect.watch",
    "motiond.record.clipflow",
    "motiond.web_backend",
]
MAX_IMPORT_CHAIN = 10  # modules on the longest chain of imports
MAX_CLASS_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every motiond module ``path`` imports, anywhere in it (TYPE_CHECKING blocks and
    functions included): a cycle through a lazy import is still a cycle."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "motiond"}


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        # "from motiond.web import api" names module motiond.web.api; keep module names only.
        graph[name] = {i for i in imports_of(path) if i in modules and i != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if target.startswith(node + "."):
                continue  # a package importing its own modules (motiond.web -> motiond.web.x)
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert "motiond.daemon" in graph and "motiond.web.app" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def in_web(module: str) -> bool:
    return module == "motiond.web" or module.startswith("motiond.web.")


def test_the_web_package_imports_nothing_of_the_daemon() -> None:
    graph = import_graph()
    web = {name: targets for name, targets in graph.items() if in_web(name)}
    assert "motiond.web.door" in web and "motiond.web_backend" not in web
    for name, targets in web.items():
        # The config's sections are types, whichever module of the package declares them.
        outside = {t for t in targets if not in_web(t) and not t.startswith("motiond.config.")}
        assert outside <= WEB_MAY_IMPORT, (name, sorted(outside - WEB_MAY_IMPORT))


def test_the_web_package_loads_with_the_daemon_blocked() -> None:
    """The same at run time: with the daemon's modules unimportable, the whole web package
    still imports (a second check on the AST scan above)."""
    script = f"""
import importlib.abc, sys
BLOCKED = {DAEMON_INTERNALS!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError("blocked: " + name)
        return None
sys.meta_path.insert(0, Block())
import motiond.web.app, motiond.web.api, motiond.web.auth, motiond.web.base
import motiond.web.door, motiond.web.live, motiond.web.media, motiond.web.pages
import motiond.web.sessions, motiond.web.server, motiond.web.bounds
loaded = sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in BLOCKED))
assert not loaded, loaded
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def chain_graph() -> dict[str, set[str]]:
    """Modules as nodes; ``import motiond.x`` and ``from motiond.x import y`` are an edge to
    ``motiond.x``, or to ``motiond.x.y`` where that is a module (then only to it)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    targets.add(submodule if submodule in modules else node.module)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def longest_chain(graph: dict[str, set[str]]) -> list[str]:
    """The longest path of imports, as the modules on it (the graph has no cycle)."""
    longest: dict[str, list[str]] = {}

    def from_node(node: str) -> list[str]:
        if node not in longest:
            below = max((from_node(t) for t in sorted(graph[node])), key=len, default=[])
            longest[node] = [node, *below]
        return longest[node]

    return max((from_node(node) for node in sorted(graph)), key=len)


def test_import_chains_are_short() -> None:
    graph = chain_graph()
    assert find_cycle(graph) is None
    chain = longest_chain(graph)
    assert len(chain) >= 5, chain  # the scan sees the package (cli -> daemon -> ...)
    assert len(chain) <= MAX_IMPORT_CHAIN, " -> ".join(chain)


def test_longest_chain_counts_modules_on_the_path() -> None:
    graph = {"a": {"b", "c"}, "b": {"d"}, "c": set(), "d": set()}
    assert longest_chain(graph) == ["a", "b", "d"]


def test_no_class_is_over_400_lines() -> None:
    sizes = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                sizes[f"{module_name(path)}.{node.name}"] = node.end_lineno - start + 1
    assert "motiond.capture.camera.CameraWorker" in sizes
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_CLASS_LINES}
    assert not too_long, too_long
