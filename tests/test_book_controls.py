"""Controls that need a kernel say so in the book.

A stored widget control (slider, text box, dropdown, button, checkbox...) is drawn in the static book by
the widgets' HTML manager, but no Python answers it there: it would move and take typing and nothing would
change. So `python -m dltoolbox.course.notebooks clean` stores every control disabled and puts a "Needs a running
kernel" note with the launch hint right before the first widget of its cell; running the cell in Jupyter
replaces both with live controls. nbval (with the dltoolbox.course.nbval_kernels plugin) does not compare the note.

* unit tests of the sanitizer on small synthetic notebooks, and of nbval on one with a compared control cell;
* every committed notebook's stored controls are disabled and labelled (a pending set that may only shrink);
* in the built book, no widget offers an enabled input, select, button or slider, and each widget area
  with controls shows the note.
"""
import copy
import json
import os
import subprocess
import sys

import nbformat
import pytest

from conftest import ROOT, chapter_notebooks
from dltoolbox.course import notebooks
from test_book import SETTLED, browser, pages  # noqa: F401 - browser is a fixture used here

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
LABEL = "Needs a running kernel"
HINT = "launch the notebook (rocket button at the top of the page)"

# Notebooks whose stored controls are still to be disabled and labelled. This set may only shrink: when one
# of them is done, the test below says so and it must be removed from here (and from PENDING_AT_START).
# Both are being re-run, and `notebooks run` cleans what it stores; otherwise:
#     python -m dltoolbox.course.notebooks clean chapters/02_ngrams/ngrams.ipynb chapters/03_seq2seq/seq2seq.ipynb
PENDING = set()
PENDING_AT_START = {"chapters/02_ngrams/ngrams.ipynb", "chapters/03_seq2seq/seq2seq.ipynb"}


# --- synthetic notebooks ------------------------------------------------------------------------------
def _model(name, module="@jupyter-widgets/controls", **state):
    return {"model_module": module, "model_module_version": "2.0.0", "model_name": name, "state": state}


def _view(model_id, text):
    return nbformat.v4.new_output("display_data", {WIDGET_VIEW: {"model_id": model_id, "version_major": 2,
                                                                "version_minor": 0}, "text/plain": text})


def synthetic_notebook():
    """A cell with a slider and an Output in a VBox (and a print); one with a lone Output widget; one with
    a plot and no widget; one with a bare button shown after a text output."""
    state = {
        "box": _model("VBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_out"], layout="IPY_MODEL_l1"),
        "slider": _model("IntSliderModel", value=3, disabled=False, description="n", layout="IPY_MODEL_l2",
                         style="IPY_MODEL_s1"),
        "out": _model("OutputModel", "@jupyter-widgets/output", outputs=[], layout="IPY_MODEL_l3"),
        "lonely": _model("OutputModel", "@jupyter-widgets/output", outputs=[], layout="IPY_MODEL_l4"),
        "button": _model("ButtonModel", description="go", layout="IPY_MODEL_l5", style="IPY_MODEL_s2"),
        "s1": _model("SliderStyleModel", description_width=""), "s2": _model("ButtonStyleModel"),
        **{f"l{i}": _model("LayoutModel", "@jupyter-widgets/base") for i in range(1, 6)},
    }
    controls = nbformat.v4.new_code_cell("display(widgets.VBox([slider, out]))\nprint('default: 3')",
                                         execution_count=1, outputs=[
                                             _view("box", "VBox(children=(IntSlider(value=3, description='n'), Output()))"),
                                             nbformat.v4.new_output("stream", name="stdout", text="default: 3\n")])
    output_only = nbformat.v4.new_code_cell("display(widgets.Output())", execution_count=2,
                                            outputs=[_view("lonely", "Output()")])
    plot = nbformat.v4.new_code_cell("plt.plot([1, 2])", execution_count=3, outputs=[
        nbformat.v4.new_output("display_data", {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})])
    button = nbformat.v4.new_code_cell("print('before')\ndisplay(widgets.Button(description='go'))", execution_count=4,
                                       outputs=[nbformat.v4.new_output("stream", name="stdout", text="before\n"),
                                                _view("button", "Button(description='go', style=ButtonStyle())")])
    nb = nbformat.v4.new_notebook(cells=[controls, output_only, plot, button])
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    return nb


def _state(nb):
    return nb["metadata"]["widgets"][WIDGET_STATE]["state"]


def test_a_slider_is_stored_disabled_under_the_note():
    nb = synthetic_notebook()
    assert notebooks.disable_controls(nb) > 0
    state = _state(nb)
    assert state["slider"]["state"]["disabled"] is True and state["button"]["state"]["disabled"] is True
    cell = nb.cells[0]
    assert [o.output_type for o in cell.outputs] == ["display_data", "display_data", "stream"]
    note = cell.outputs[0]
    assert notebooks.is_kernel_note(note) and WIDGET_VIEW in cell.outputs[1]["data"], "the note, then the widget"
    assert LABEL in note["data"]["text/html"] and HINT in note["data"]["text/html"]
    assert note["data"]["text/plain"].startswith(LABEL + ":") and HINT in note["data"]["text/plain"]
    button = nb.cells[3].outputs
    assert [o.get("name") for o in button] == ["stdout", None, None], "right before the first widget view"
    assert notebooks.is_kernel_note(button[1]) and WIDGET_VIEW in button[2]["data"]
    nbformat.validate(nb)


def test_an_output_widget_and_other_outputs_are_untouched():
    nb = synthetic_notebook()
    before = copy.deepcopy(nb)
    notebooks.disable_controls(nb)
    assert nb.cells[1] == before.cells[1], "a lone Output widget is no control: no note"
    assert nb.cells[2] == before.cells[2], "a plot is no widget"
    assert nb.cells[0].outputs[1:] == before.cells[0].outputs, "the widget's view and the print stay as they were"
    state, old = _state(nb), _state(before)
    for model in ("box", "out", "lonely", "s1", "s2", "l1"):
        assert state[model] == old[model], f"{model} is not a control"
    assert notebooks.is_control(old["slider"]) and not notebooks.is_control(old["out"])
    assert not notebooks.is_control(old["box"]) and not notebooks.is_control(old["s1"])


def test_disabling_twice_changes_nothing_and_a_stale_note_goes():
    nb = synthetic_notebook()
    notebooks.disable_controls(nb)
    once = copy.deepcopy(nb)
    assert notebooks.disable_controls(nb) == 0 and nb == once, "idempotent"
    # a cell whose widgets hold no control any more loses its note
    nb.cells[1].outputs.insert(0, notebooks.kernel_note())
    assert notebooks.disable_controls(nb) == 1 and nb == once
    # a note in the wrong place (after the widget) is moved, not doubled
    outputs = nb.cells[0].outputs
    outputs.insert(2, outputs.pop(0))
    assert notebooks.disable_controls(nb) == 1 and nb == once


def test_clean_disables_the_controls_and_a_clean_file_is_left_as_it_is(tmp_path):
    path = tmp_path / "x.ipynb"
    nbformat.write(synthetic_notebook(), path)
    done = notebooks.clean_files([path])
    assert done[path]["kernel controls"] == 4, "two controls, two cells"
    assert control_problems(json.loads(path.read_text(encoding="utf-8"))) == []
    text = path.read_text(encoding="utf-8")
    assert notebooks.clean_files([path]) == {} and path.read_text(encoding="utf-8") == text


def test_the_check_finds_what_it_looks_for():
    nb = json.loads(nbformat.writes(synthetic_notebook()))
    found = control_problems(nb)
    assert any("slider" in p and "not disabled" in p for p in found)
    assert any("cell 0" in p and "no note" in p for p in found) and any("cell 3" in p for p in found)
    assert not any("cell 1" in p or "cell 2" in p for p in found)


# --- nbval: a compared cell with a control still passes, and its other outputs are still compared ---------
def _nbval(folder, plugin=True):
    """pytest --nbval on `folder`'s notebooks, this project's nbval plugin loaded or not; (rc, output)."""
    args = [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "no:cacheprovider",
            "-p", "no:xdist", "-c", os.devnull, "--rootdir", str(folder), "-q", str(folder)]
    if plugin:
        args[3:3] = ["-p", "dltoolbox.course.nbval_kernels"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=folder)
    return proc.returncode, proc.stdout + proc.stderr


def test_nbval_compares_a_control_cell_without_the_note(tmp_path):
    """The note is an output a fresh run never makes: plain nbval fails on it in a compared cell, with this
    project's plugin the cell passes; the cell's other outputs are still compared."""
    source = ("import ipywidgets as widgets\nslider = widgets.IntSlider(value=3, description='n')\n"
              "display(widgets.VBox([slider, widgets.Output()]))\nprint('default', slider.value)")
    path = tmp_path / "controls.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), path)
    stored = notebooks.execute(path, timeout=120)   # as `notebooks run` stores it: cleaned
    assert notebooks.is_kernel_note(stored.cells[0].outputs[0]), "the stored cell carries the note"
    assert "nbval-ignore-output" not in stored.cells[0].metadata.get("tags", []), "and is compared"
    rc, out = _nbval(tmp_path, plugin=True)
    assert rc == 0 and "1 passed" in out, out[-3000:]
    rc, out = _nbval(tmp_path, plugin=False)
    assert rc != 0 and "Missing output fields" in out, out[-3000:]
    stored.cells[0].outputs[-1]["text"] = "default 4\n"       # a real difference is still caught
    nbformat.write(stored, path)
    rc, out = _nbval(tmp_path, plugin=True)
    assert rc != 0 and "default 4" in out, out[-3000:]


# --- the committed notebooks ---------------------------------------------------------------------------
def _refs(state, roots):
    return notebooks._closure(roots, state)


def control_problems(nb):
    """What keeps a stored notebook's controls from saying, in the book, that they need a kernel."""
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    controls = {m for m, model in state.items() if notebooks.is_control(model)}
    problems = [f"control {m} ({state[m]['model_name']} {state[m]['state'].get('description', '')!r}) "
                "is not disabled" for m in sorted(controls) if state[m]["state"].get("disabled") is not True]
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        notes = [j for j, o in enumerate(outputs) if notebooks.is_kernel_note(o)]
        views = [j for j, o in enumerate(outputs) if WIDGET_VIEW in o.get("data", {})]
        shown = {outputs[j]["data"][WIDGET_VIEW].get("model_id") for j in views}
        if views and _refs(state, shown) & controls:
            if len(notes) != 1:
                problems.append(f"cell {i}: controls, and {len(notes) or 'no'} note(s) that they need a kernel")
            elif notes[0] + 1 != views[0]:
                problems.append(f"cell {i}: the note is not right before the first widget")
            else:
                note = outputs[notes[0]]["data"]
                html = "".join(note["text/html"]) if isinstance(note["text/html"], list) else note["text/html"]
                if LABEL not in html or HINT not in html:
                    problems.append(f"cell {i}: the note lacks the label or the launch hint")
        elif notes:
            problems.append(f"cell {i}: a note that needs a kernel, and no control")
    return problems


NOTEBOOKS = chapter_notebooks()
NAMES = [p.relative_to(ROOT).as_posix() for p in NOTEBOOKS]


def _load(name):
    return json.loads((ROOT / name).read_text(encoding="utf-8"))


def test_the_pending_set_only_shrinks():
    print(f"notebooks whose controls are still to label (python -m dltoolbox.course.notebooks clean PATH): "
          f"{sorted(PENDING) or 'none'}")
    assert PENDING <= PENDING_AT_START, "the pending set may only shrink"
    assert PENDING <= set(NAMES), f"no such notebook: {sorted(PENDING - set(NAMES))}"
    done = [name for name in sorted(PENDING) if not control_problems(_load(name))]
    assert not done, f"{done}: its controls are labelled now; remove it from PENDING (and PENDING_AT_START)"


@pytest.mark.parametrize("name", NAMES)
def test_every_stored_control_is_disabled_and_labelled(name):
    if name in PENDING:
        pytest.skip(f"pending: {name} (python -m dltoolbox.course.notebooks clean {name})")
    assert control_problems(_load(name)) == []


def test_one_explorer_per_idea_in_the_scale_chapter():
    """Chapter 7 explores its fitted law with the kernel-free explorer only: no kernel-bound twin of it."""
    nb = _load("chapters/07_scale/scale.ipynb")
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert code.count("explorer_html(") == 1 and "widgets.FloatLogSlider" not in code
    assert "widgets" not in nb["metadata"], "no stored widget is left"


# --- the built book ------------------------------------------------------------------------------------
# In each widget area: what a reader could still work (a slider of ipywidgets 8 is a noUiSlider <div>), and
# whether the output area (myst-nb's cell_output) that holds the widget shows the note before it.
CONTROLS = """() => {
  const live = 'input:not([disabled]), select:not([disabled]), button:not([disabled]), textarea:not([disabled]), '
             + '[contenteditable="true"], .noUi-target:not([disabled])';
  const any = 'input, select, button, textarea, .noUi-target, .widget-readout';
  const widgets = Array.from(document.querySelectorAll('.jupyter-widgets'))
                       .filter(w => !w.parentElement.closest('.jupyter-widgets'));   // outermost only
  const enabled = [];
  for (const w of widgets)
    for (const e of w.querySelectorAll(live))
      enabled.push((e.tagName + ' ' + (e.className || '') + ' ' + (e.getAttribute('aria-label') || e.textContent || '')).trim().slice(0, 80));
  const areas = [];
  for (const w of widgets) {
    if (!w.querySelector(any)) continue;
    const area = w.closest('.cell_output') || w.parentElement;
    const note = area.querySelector('.needs-kernel');
    areas.push({controls: w.querySelectorAll(any).length,
                note: note ? note.textContent : '',
                before: !!note && !!(note.compareDocumentPosition(w) & Node.DOCUMENT_POSITION_FOLLOWING)});
  }
  return {widgets: widgets.length, enabled, areas};
}"""


def check_controls_in_the_book(html, browser):
    """{page: [problems]} over every built page that stores a widget, and {page: widget areas with controls}."""
    failures, found = {}, {}
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
    page = context.new_page()
    page.set_default_timeout(120_000)   # the longest pages, on a busy machine
    for path in pages(html):
        if WIDGET_VIEW not in path.read_text(encoding="utf-8", errors="replace"):
            continue
        name = str(path.relative_to(html))
        page.goto(path.as_uri(), wait_until="load")
        try:
            page.wait_for_function(SETTLED, timeout=15_000)
        except Exception:  # noqa: BLE001 - the count of drawn widgets below says what is missing
            pass
        state = page.evaluate(CONTROLS)
        problems = [f"an enabled control: {e}" for e in state["enabled"]]
        for k, area in enumerate(state["areas"]):
            if LABEL not in area["note"] or HINT not in area["note"]:
                problems.append(f"widget area {k} ({area['controls']} controls) shows no '{LABEL}' note")
            elif not area["before"]:
                problems.append(f"widget area {k}: the note is not above the controls")
        if not state["widgets"]:
            problems.append("stored widgets, none drawn")
        found[name] = len(state["areas"])
        if problems:
            failures[name] = problems
    context.close()
    return failures, found


def test_no_widget_in_the_book_offers_a_live_control(html, browser):
    failures, found = check_controls_in_the_book(html, browser)
    print(f"widget areas with controls, per page: {found}")
    pending = {name.removesuffix(".ipynb") + ".html" for name in PENDING}
    print(f"pages of pending notebooks, not held to it yet: {sorted(pending & set(failures)) or 'none'}")
    assert not {page: problems for page, problems in failures.items() if page not in pending}, failures
    assert sum(found.values()) >= 3, "the attention, imitation and few-shot pages have controls"
