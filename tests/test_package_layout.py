"""The package's rooms: the ideas at the top level, each chapter's experiments in dltoolbox.experiments, the
course's machinery in dltoolbox.course, the grader in dltoolbox.classroom and the students' checks in
dltoolbox.checks. The ideas import no other room; the grader's code has no import cycle."""
import ast

import pytest

from conftest import ROOT

PACKAGE = ROOT / "code" / "dltoolbox"


def _imports(path, everywhere=False):
    """The dltoolbox modules a module imports at its top level (everywhere=True: inside functions too)."""
    name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    tree = ast.parse(path.read_text())
    for node in (ast.walk(tree) if everywhere else tree.body):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rsplit(".", 1)[0]
            module = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return name, {m for m in found if m.startswith("dltoolbox")}


def test_no_import_cycles_in_the_package():
    graph = dict(_imports(p) for p in PACKAGE.rglob("*.py"))
    graph = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join(path + [module])}"
        state[module] = "open"
        for dep in sorted(graph[module]):
            visit(dep, path + [module])
        state[module] = "done"
    for module in sorted(graph):  # from the classroom and the checks (other modules are their authors' to test)
        if module.startswith(("dltoolbox.classroom", "dltoolbox.checks")):
            visit(module, [])


def test_the_classroom_is_apart_from_the_teaching_modules():
    graph = dict(_imports(p) for p in PACKAGE.rglob("*.py"))
    teaching = [m for m in graph if not m.startswith("dltoolbox.classroom")]
    for module in teaching:
        assert not [d for d in graph[module] if d.startswith("dltoolbox.classroom")], module
    assert {"dltoolbox.classroom.release", "dltoolbox.classroom.grading", "dltoolbox.classroom.sandbox",
            "dltoolbox.classroom.judge", "dltoolbox.classroom.hidden"} <= set(graph)


ROOMS = ("dltoolbox.experiments", "dltoolbox.course", "dltoolbox.classroom", "dltoolbox.checks")
IDEA_LINES = 330  # "about 300 lines" per idea module


def idea_modules():
    return sorted(p for p in PACKAGE.glob("*.py") if p.name != "__init__.py")


def test_the_top_level_holds_only_ideas_and_small_helpers():
    """Nothing at the top level imports another room, even inside a function: a student reading an idea
    module reads the idea, and the experiments, the book and the grader build on the ideas, never the
    other way round."""
    for path in idea_modules():
        name, deps = _imports(path, everywhere=True)
        assert not [d for d in deps if d.startswith(ROOMS)], (name, sorted(d for d in deps if d.startswith(ROOMS)))
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))} == {
        "checks", "classroom", "course", "data", "experiments"}


@pytest.mark.parametrize("path", idea_modules(), ids=lambda p: p.stem)
def test_each_idea_module_is_about_300_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= IDEA_LINES, f"{path.name}: {lines} lines; move its experiment protocol to dltoolbox.experiments"
