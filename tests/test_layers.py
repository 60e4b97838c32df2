"""The house's floors: every import in huimages goes down a floor or stays on its own, and none runs in a circle.

Read from the source with ``ast`` (nothing is imported). Imports under
``if TYPE_CHECKING:`` are annotations only: they count for the floors, not for
circles. docs/architecture.md carries the table of floors made here:
``python -m tests.test_layers`` writes it again after a change.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.pages import generated, regenerate

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "huimages"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

#: Each part of the package, its floor, and its job. A module may import from its own floor and the ones below.
FLOORS: dict[str, tuple[int, str]] = {
    "huimages.errors": (0, "one exception root and its subclasses, each carrying its context"),
    "huimages.core": (0, "pure: IDs, the size and URL grammar, formats, text checks, byte units"),
    "huimages.config": (1, "Settings, grouped by concern, from the environment and a file; the settings table"),
    "huimages.backends": (2, "plumbing: CouchDB, S3, SQLite, files (atomic writes, path containment)"),
    "huimages.telemetry": (2, "Prometheus metrics summed over a host's processes; text or JSON log lines"),
    "huimages.imaging": (2, "Pillow: checks, masters, renders, colour"),
    "huimages.catalog": (3, "image records: base, SQLite, CouchDB (huImages' documents)"),
    "huimages.originals": (3, "original bytes and masters: base, filesystem, S3, legacy CouchDB attachments"),
    "huimages.cdn": (3, "the CDN queue store (SQLite, CouchDB) and its publisher"),
    "huimages.serving": (4, "the use cases (service), the derivative cache, pruning, and the guards of renders"),
    "huimages.client": (5, "Client (local or remote), `<img>` and `<picture>` markup, srcset geometry"),
    "huimages.django": (6, "Django: template tags, a model field that uploads, the admin's thumbnails (an extra)"),
    "huimages.jinja": (6, "Jinja2: the template helpers as an environment's globals"),
    "huimages.http": (6, "the WSGI app, the images API, the web interface, the fronts (gunicorn, FastCGI, lighttpd)"),
    "huimages.ops": (7, "the huimages command, migrations from huImages, orphaned originals"),
    "huimages": (8, "huImages' module functions and the public names, imported when first used"),
    "huimages.__main__": (8, "python -m huimages"),
    "huimages.server": (8, "FastCGI entry for lighttpd's bin-path"),
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def part_of(module: str) -> str:
    """The entry of FLOORS a module belongs to (the longest that is it or contains it)."""
    candidates = [name for name in FLOORS if module == name or module.startswith(name + ".")]
    assert candidates, f"{module} is on no floor: add it to FLOORS"
    return max(candidates, key=len)


def imports(path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int, bool]]:
    """(imported huimages module, line, only for type checking) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    checking_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            checking_lines |= {n.lineno for child in node.body for n in ast.walk(child) if hasattr(n, "lineno")}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "huimages":
                    yield alias.name, node.lineno, node.lineno in checking_lines
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "huimages":
            for alias in node.names:  # `from huimages.serving import prune` imports the module huimages.serving.prune
                submodule = f"{node.module}.{alias.name}"
                target = submodule if submodule in known else node.module
                yield target, node.lineno, node.lineno in checking_lines


def edges() -> list[tuple[str, str, int, bool]]:
    known = modules()
    return [
        (name, target, line, typing_only)
        for name, path in sorted(known.items())
        for target, line, typing_only in imports(path, known)
    ]


def test_every_module_is_on_a_floor() -> None:
    for name in modules():
        part_of(name)


def test_imports_go_down_or_stay_on_their_floor() -> None:
    upward = []
    for source, target, line, _ in edges():
        here, there = FLOORS[part_of(source)][0], FLOORS[part_of(target)][0]
        if there > here:
            upward.append(f"{source}:{line} imports {target} (floor {here} -> {there})")
    assert not upward, "imports that climb a floor:\n" + "\n".join(upward)


def test_no_import_runs_in_a_circle() -> None:
    graph: dict[str, set[str]] = {}
    for source, target, _, typing_only in edges():
        if not typing_only and source != target:
            graph.setdefault(source, set()).add(target)
    circles = [sorted(group) for group in _strongly_connected(graph) if len(group) > 1]
    assert not circles, f"import circles: {circles}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    counter = 0
    for root in list(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def floors_table() -> str:
    """The architecture page's table of floors, top floor first, with each part's modules."""
    known = modules()
    lines = ["| floor | part | job | modules |", "|---|---|---|---|"]
    for name, (floor, job) in sorted(FLOORS.items(), key=lambda item: (-item[1][0], item[0])):
        members = sorted(m.removeprefix(name + ".") for m in known if part_of(m) == name and m != name)
        shown = ", ".join(f"`{m}`" for m in members) if members else ""
        lines.append(f"| {floor} | `{name}` | {job} | {shown} |")
    return "\n".join(lines) + "\n"


def test_the_architecture_page_shows_these_floors() -> None:
    assert generated(ARCHITECTURE, "floors") == floors_table(), "run: python -m tests.test_layers"


if __name__ == "__main__":
    regenerate(ARCHITECTURE, "floors", floors_table())
