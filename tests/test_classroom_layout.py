"""The classroom code is its own subpackage, apart from the modules that teach, with no import cycle."""
import ast

from conftest import ROOT

PACKAGE = ROOT / "code" / "dltoolbox"


def _imports(path):
    """The dltoolbox modules a module imports at its top level (not inside functions)."""
    name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
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
        if module.startswith(("dltoolbox.classroom", "dltoolbox.checks", "dltoolbox.assignments", "dltoolbox.grading")):
            visit(module, [])


def test_the_classroom_is_apart_from_the_teaching_modules():
    graph = dict(_imports(p) for p in PACKAGE.rglob("*.py"))
    teaching = [m for m in graph if not m.startswith(("dltoolbox.classroom", "dltoolbox.assignments",
                                                      "dltoolbox.grading"))]
    for module in teaching:
        assert not [d for d in graph[module] if d.startswith("dltoolbox.classroom")], module
    assert {"dltoolbox.classroom.release", "dltoolbox.classroom.grading", "dltoolbox.classroom.sandbox",
            "dltoolbox.classroom.judge", "dltoolbox.classroom.hidden"} <= set(graph)
