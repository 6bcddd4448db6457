"""Re-execute the course notebooks and store their outputs (what nbval and the book compare against).

    python -m dltoolbox.course.notebooks run                     # every notebook under chapters/
    python -m dltoolbox.course.notebooks run chapters/02_ngrams  # one chapter
    python -m dltoolbox.course.notebooks spread                  # results of every notebook on several CPU kernels
    python -m dltoolbox.course.notebooks benchmark               # wall time and peak memory of every notebook
    python -m dltoolbox.course.notebooks clean chapters/02_ngrams/ngrams.ipynb  # tidy stored outputs, no re-run

`run` records in each notebook's metadata the machine its outputs come from, and stores no progress bar:
its kernels run with $DLTOOLBOX_NO_PROGRESS=1, and it applies `clean` to what it stores. `clean` tidies
stored outputs without executing anything: it removes progress bars (tqdm's text on stderr, tqdm's widgets
and their widget state; other stderr and other widgets stay), the `True` a passing exercise check used to
leave under its cell, shows the `results` cell's metrics as a table of readable names (its input
folded), and shows stored widget controls (sliders, text boxes, dropdowns, buttons...) disabled under a
"needs a running kernel" note with the launch hint: in the static book nothing answers them, while running
the cell in Jupyter gives live controls (nbval, with the dltoolbox.course.nbval_kernels plugin, does not compare
the note). `spread` executes every
notebook (copies, never the originals) once per CPU kernel setting, two at a time, and writes the range
of each results-cell metric to chapters/kernel_spread.json, which the Results page shows (run on some
notebooks, it refreshes their entries and keeps the others). `benchmark`
executes each notebook (a copy) alone in a fresh process and kernel and writes its wall-clock time and
peak memory to chapters/benchmark.json and to the table in the README (a benchmark on a quiet machine,
not a timed test).
"""
import argparse
import ast
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from ..locations import ROOT
from ..progress import DISABLE_ENV_VAR


def notebook_paths(paths):
    """The notebooks named by `paths` (files or folders), skipping checkpoints and build output."""
    found = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"no such notebook or folder: {p}")
        if p.is_dir():
            found += [q for q in sorted(p.rglob("*.ipynb"))
                      if ".ipynb_checkpoints" not in q.parts and "_build" not in q.parts]
        elif p.suffix == ".ipynb":
            found.append(p)
        else:
            raise ValueError(f"not a notebook: {p}")
    return found


SPREAD_FILE = ROOT / "chapters" / "kernel_spread.json"
REPOSITORY = "https://github.com/deep-learning-toolbox/course"  # as in _config.yml (a test checks)
# The first code cell of every chapter notebook (hidden in the book): on Colab it fetches the course's
# package and the one library Colab lacks; anywhere else it does nothing.
COLAB_CELL = f"""# On Google Colab only (anywhere else this does nothing): get the course's helper package.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run(["git", "clone", "--depth", "1", "{REPOSITORY}", "/content/course"], check=False)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "sacrebleu==2.6.0"], check=True)
    sys.path.insert(0, "/content/course/code")"""
KERNEL_SETTINGS = {  # name -> environment of the kernel (the same names as dltoolbox.course.nbval_kernels)
    "native": {},
    "default": {"ATEN_CPU_CAPABILITY": "default"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def cpu_name():
    """The processor's model name (as /proc/cpuinfo or the platform reports it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    """What the stored outputs were computed on: processor, the CPU kernels PyTorch chose, versions."""
    import torch

    return {"cpu": cpu_name(), "arch": platform.machine(), "kernels": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__.split("+")[0], "python": platform.python_version(),
            "threads": int(os.environ.get("DLTOOLBOX_THREADS", 1))}


@contextlib.contextmanager
def environment(changes):
    """Set environment variables for the duration of the block, then put back what was there."""
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- Tidying stored outputs ------------------------------------------------------------------------------
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# One tqdm bar as text: "desc:  12%|█▏   | 242/2000 [00:00<00:03, 483.59it/s]" or, without a total,
# "desc: 242it [00:00, 483.59it/s]": elapsed time, then a rate (…/s or s/…), maybe a postfix.
_BAR = re.compile(r"(?:\|[^|\n]*\|\s*[^\s/|]+/[^\s\[]+|\d[\d.,]*[kMGTPEZY]?[^\s\[\d]*)\s*"
                  r"\[\d+:\d\d(?::\d\d)?(?:<[^\],\n]*)?,[^\]\n]*(?:/s|s/)[^\]\n]*\]\s*$")


def is_progress_text(text):
    """Whether `text` (one line, or one piece between carriage returns) is a tqdm bar."""
    return bool(_BAR.search(text))


def strip_progress_text(text):
    """`text` of a stream without its tqdm bars: each line that holds only bars goes; other lines stay as
    they were, character for character (a line mixing both keeps its other pieces)."""
    kept = []
    for line in re.findall(r"[^\n]*\n|[^\n]+$", text):  # lines; not str.splitlines, which splits at \r too
        body = line.rstrip("\n")
        pieces = body.split("\r")
        bars = [p for p in pieces if p.strip() and is_progress_text(p)]
        if not bars:
            kept.append(line)
            continue
        rest = [p for p in pieces if p.strip() and not is_progress_text(p)]
        if rest:
            kept.append("".join(rest) + line[len(body):])
    return "".join(kept)


def _widget_refs(value):
    """The widget model ids `value` (a widget's state, or part of it) refers to."""
    refs = set()
    if isinstance(value, str):
        if value.startswith("IPY_MODEL_"):
            refs.add(value[len("IPY_MODEL_"):])
    elif isinstance(value, dict):
        if isinstance(value.get("model_id"), str):
            refs.add(value["model_id"])
        for item in value.values():
            refs |= _widget_refs(item)
    elif isinstance(value, list):
        for item in value:
            refs |= _widget_refs(item)
    return refs


def _closure(roots, state):
    """Every model id reachable from `roots` through the widget state's references."""
    seen, todo = set(), list(roots)
    while todo:
        model = todo.pop()
        if model in seen or model not in state:
            continue
        seen.add(model)
        todo += _widget_refs(state[model].get("state", {}))
    return seen


def _widget_state(nb):
    return nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})


def is_progress_widget(model_id, state):
    """Whether a widget model is a tqdm bar: an HBox of an HTML label, a progress bar and an HTML label."""
    model = state.get(model_id, {})
    if model.get("model_name") != "HBoxModel":
        return False
    children = model.get("state", {}).get("children", [])
    names = [state.get(str(c).replace("IPY_MODEL_", "", 1), {}).get("model_name") for c in children]
    return len(names) == 3 and names[0] == names[2] == "HTMLModel" and names[1] in ("FloatProgressModel",
                                                                                      "IntProgressModel")


def _is_progress_view(output, state):
    """A display of a tqdm widget (known by its widget state, else by a bar as its text stand-in)."""
    data = output.get("data", {})
    if output.get("output_type") not in ("display_data", "execute_result") or WIDGET_VIEW not in data:
        return False
    model_id = data[WIDGET_VIEW].get("model_id")
    if model_id in state:
        return is_progress_widget(model_id, state)
    text = data.get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else text
    return bool(text) and is_progress_text(text)


def strip_progress(nb):
    """Remove progress bars from a notebook's stored outputs, in place: tqdm's text in stderr streams,
    the displays of tqdm widgets, and those widgets' models in the notebook's widget state. Other stderr
    (warnings) and other widgets stay. Returns the number of outputs removed or shortened."""
    state = _widget_state(nb)
    changed, removed_views = 0, set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            if _is_progress_view(output, state):
                removed_views.add(output["data"][WIDGET_VIEW].get("model_id"))
                changed += 1
                continue
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = output.get("text", "")
                text = "".join(text) if isinstance(text, list) else text
                stripped = strip_progress_text(text)
                if stripped != text:
                    changed += 1
                    if not stripped:
                        continue
                    output["text"] = stripped
            outputs.append(output)
        cell["outputs"] = outputs
    bars = {m for m in state if is_progress_widget(m, state)} | (removed_views & set(state))
    if bars:
        candidates = _closure(bars, state)
        kept = _closure(set(state) - candidates, state)
        for model in candidates - kept:
            del state[model]
        if not state:
            del nb["metadata"]["widgets"]
    return changed


def _ends_with_check_call(source):
    """Whether a cell's last statement is an exercise checker's call (``check.exercise_2(...)``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    if not tree.body or not isinstance(tree.body[-1], ast.Expr) or not isinstance(tree.body[-1].value, ast.Call):
        return False
    func = tree.body[-1].value.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return bool(re.fullmatch(r"exercise_\w+", name))


def strip_check_results(nb):
    """Remove the `True` a passing exercise check left as its cell's result, in place; the number removed."""
    removed = 0
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if cell.get("cell_type") != "code" or not _ends_with_check_call(source):
            continue
        outputs = [o for o in cell.get("outputs", []) if not (
            o.get("output_type") == "execute_result" and set(o.get("data", {})) == {"text/plain"}
            and "".join(o["data"]["text/plain"]).strip() == "True")]
        removed += len(cell.get("outputs", [])) - len(outputs)
        cell["outputs"] = outputs
    return removed


def show_results_table(nb, path=None):
    """Show the `results` cell's stored metrics as a table of readable names (chapters/metrics.yml, the
    notebook's entry when `path` is given), as report() now displays them, and fold the cell's input; in
    place. The dict stays as the output's text, where read_results() finds it. Returns 1 if it changed."""
    from ..results import RESULTS_TAG, names_for, report, results_cells, results_html

    notebook = _name(path) if path is not None else None
    changed = 0
    for cell in results_cells(nb):
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "hide-input" not in tags:
            tags.insert(tags.index(RESULTS_TAG) + 1, "hide-input")
            changed = 1
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain")
            if output.get("output_type") != "execute_result" or text is None:
                continue
            metrics = ast.literal_eval("".join(text) if isinstance(text, list) else text)
            report(metrics)  # validates
            names = (names_for(metrics, notebook=notebook) if notebook else {}) or names_for(metrics)  # a copy: by keys
            html = results_html(metrics, names)
            if output["data"].get("text/html") != html:
                output["data"]["text/html"] = html
                changed = 1
    return changed


# Widget models a reader works (they have ipywidgets' `disabled` trait, or are inputs all the same):
# without a kernel nothing answers them. Containers, labels, outputs, progress bars, layouts and styles are
# not controls.
CONTROL_MODELS = frozenset({
    "BoundedFloatTextModel", "BoundedIntTextModel", "ButtonModel", "CheckboxModel", "ColorPickerModel",
    "ColorsInputModel", "ComboboxModel", "ControllerModel", "DatePickerModel", "DatetimeModel",
    "DropdownModel", "FileUploadModel", "FloatLogSliderModel", "FloatRangeSliderModel", "FloatSliderModel",
    "FloatTextModel", "FloatsInputModel", "IntRangeSliderModel", "IntSliderModel", "IntTextModel",
    "IntsInputModel", "NaiveDatetimeModel", "PasswordModel", "PlayModel", "RadioButtonsModel",
    "SelectModel", "SelectMultipleModel", "SelectionRangeSliderModel", "SelectionSliderModel",
    "TagsInputModel", "TextModel", "TextareaModel", "TimeModel", "ToggleButtonModel", "ToggleButtonsModel",
})
KERNEL_NOTE = "needs-kernel"  # the note's mark, in its output's metadata under "dltoolbox"
KERNEL_NOTE_TEXT = ("Needs a running kernel: in the book these controls are inert and show the default below; "
                    "launch the notebook (rocket button at the top of the page) to use them.")
KERNEL_NOTE_HTML = ('<p class="needs-kernel" role="note" style="border-left: 4px solid #d97706; '
                    'padding: 0.15em 0.6em; margin: 0.3em 0;">&#9888; <strong>Needs a running kernel:</strong> '
                    "in the book these controls are inert and show the default below; launch the notebook "
                    "(rocket button at the top of the page) to use them.</p>")


def is_control(model):
    """Whether a stored widget model (an entry of the widget state) is a control a reader works."""
    return model.get("model_name") in CONTROL_MODELS or (
        model.get("model_module") == "@jupyter-widgets/controls" and "disabled" in model.get("state", {}))


def kernel_note():
    """The display output put above a cell's stored controls: the label and the launch hint."""
    return nbformat.v4.new_output("display_data", {"text/html": KERNEL_NOTE_HTML, "text/plain": KERNEL_NOTE_TEXT},
                                  metadata={"dltoolbox": KERNEL_NOTE})


def is_kernel_note(output):
    """Whether a stored output is the note :func:`disable_controls` puts above controls."""
    return isinstance(output.get("metadata"), dict) and output["metadata"].get("dltoolbox") == KERNEL_NOTE


def disable_controls(nb):
    """Show the stored controls as what they are in the static book, in place: every control's stored
    state says `disabled`, and a cell whose widgets hold a control gets the note (:func:`kernel_note`) right
    before its first widget view; a cell without one loses a note left from before. In Jupyter, running
    the cell replaces all this with live widgets. Returns the number of models and cells changed."""
    state = _widget_state(nb)
    controls = {m for m, model in state.items() if is_control(model)}
    changed = 0
    for m in sorted(controls):
        if state[m].setdefault("state", {}).get("disabled") is not True:
            state[m]["state"]["disabled"] = True
            changed += 1
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        outputs = cell.get("outputs", [])
        kept = [o for o in outputs if not is_kernel_note(o)]
        views = [i for i, o in enumerate(kept) if WIDGET_VIEW in o.get("data", {})]
        shown = {kept[i]["data"][WIDGET_VIEW].get("model_id") for i in views}
        if views and _closure(shown, state) & controls:
            kept.insert(views[0], kernel_note())
        if kept != outputs:
            cell["outputs"] = kept
            changed += 1
    return changed


def clean(nb, path=None):
    """Tidy a notebook's stored outputs in place (no execution): progress bars, stray `True`s under
    exercise checks, the results table, stored controls shown disabled under a "needs a running kernel"
    note. `path`: where the notebook lives (for its metrics' readable names).
    Returns {what: how many outputs changed}."""
    return {"progress": strip_progress(nb), "check results": strip_check_results(nb),
            "results table": show_results_table(nb, path), "kernel controls": disable_controls(nb)}


def clean_files(paths):
    """Apply :func:`clean` to notebooks on disk (files or folders); {path: changes} of those it rewrote."""
    done = {}
    for path in notebook_paths(paths):
        notebook = nbformat.read(path, as_version=4)
        changes = clean(notebook, path)
        if any(changes.values()):
            nbformat.validate(notebook)
            nbformat.write(notebook, path)
            done[path] = changes
    return done


def execute(path, timeout=900, out=None):
    """Run a notebook top to bottom in a fresh kernel, in its own folder, with no progress bars; tidy its
    outputs (:func:`clean`) and write it to `out` (default: in place)."""
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
        record_timing=False,
    )
    with environment({DISABLE_ENV_VAR: "1"}):  # the kernel inherits it: no progress bar is stored
        client.execute()
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    clean(notebook, path)
    notebook.metadata.get("kernelspec", {}).update(
        {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    )
    notebook.metadata["dltoolbox"] = {"executed_on": machine()}
    nbformat.validate(notebook)
    nbformat.write(notebook, out or path)
    return notebook


def _name(path):
    """A notebook's name in the spread table: its path in the repository (else its file name)."""
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def _execute_with(setting, path, folder, timeout):
    """Execute a copy of `path` into `folder` with one kernel setting's environment; its results."""
    from ..results import read_results

    for env in KERNEL_SETTINGS.values():  # a clean slate: nothing left over from another setting's run
        for key in env:
            os.environ.pop(key, None)
    os.environ.update(KERNEL_SETTINGS[setting])
    out = Path(folder) / setting / _name(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    execute(path, timeout=timeout, out=out)
    return setting, _name(path), read_results(out), time.perf_counter() - start


def spread(paths, settings, timeout=900, jobs=2, out=SPREAD_FILE, reuse=None, keep=()):
    """Execute each notebook under each kernel setting and write every results metric's range to `out`.

    `reuse` maps a setting to a folder of notebooks already executed with it (found by file name), e.g.
    {"native": "chapters"}: their stored results are read instead of running them again. `keep` names
    settings whose values are taken from `out` as it is: for a notebook re-run after a change that cannot
    reach its results (an exercise below its results cell), whose other settings would compute them again
    exactly as before.
    """
    from ..results import read_results

    reuse = {s: Path(f) for s, f in (reuse or {}).items()}
    unknown = (set(settings) | set(reuse) | set(keep)) - set(KERNEL_SETTINGS)
    if unknown:
        raise ValueError(f"unknown kernel setting(s) {sorted(unknown)}; choose from {sorted(KERNEL_SETTINGS)}")
    notebooks = [Path(p).resolve() for p in notebook_paths(paths)]
    runs = {}
    for setting, folder in reuse.items():
        for path in notebooks:
            found = [q for q in folder.rglob(path.name) if ".ipynb_checkpoints" not in q.parts]
            if len(found) != 1:
                raise FileNotFoundError(f"{folder}: expected one executed {path.name}, found {len(found)}")
            runs.setdefault(_name(path), {})[setting] = read_results(found[0])
    if keep:
        previous = json.loads(Path(out).read_text(encoding="utf-8")) if Path(out).exists() else {}
        for path in notebooks:
            entry = previous.get("notebooks", {}).get(_name(path))
            if not entry or any(s not in m.get("values", {}) for m in entry.values() for s in keep):
                raise ValueError(f"{out} holds no {', '.join(keep)} values for every metric of {_name(path)}")
            for setting in keep:
                runs.setdefault(_name(path), {})[setting] = {k: m["values"][setting] for k, m in entry.items()}
    # one fresh process per run: the kernel inherits only that setting's environment
    with tempfile.TemporaryDirectory() as folder, ProcessPoolExecutor(jobs, max_tasks_per_child=1) as pool:
        futures = [pool.submit(_execute_with, s, p, folder, timeout)
                   for p in notebooks for s in settings if s not in reuse and s not in keep]
        for future in futures:
            setting, name, metrics, seconds = future.result()
            print(f"  {name} [{setting}] in {seconds:.0f} s", flush=True)
            runs.setdefault(name, {})[setting] = metrics
    order = [s for s in KERNEL_SETTINGS if s in set(settings) | set(reuse) | set(keep)]
    table = {"machine": {k: v for k, v in machine().items() if k != "kernels"},
             "settings": {s: KERNEL_SETTINGS[s] for s in order}, "notebooks": {}}
    for name, by_setting in sorted(runs.items()):
        metrics = {}
        for metric in by_setting[order[0]]:
            values = {s: by_setting[s][metric] for s in order if metric in by_setting[s]}
            metrics[metric] = {"min": min(values.values()), "max": max(values.values()), "values": values}
        table["notebooks"][name] = metrics
    _keep_other_notebooks(out, table, "settings")
    Path(out).write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return table


def _keep_other_notebooks(out, table, same):
    """Add to `table` the entries of the file at `out` for notebooks this run did not execute, if that file
    agrees with `table` on `same` ("settings", "machine"): running one notebook refreshes its entry only."""
    try:
        previous = json.loads(Path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(previous, dict) and previous.get(same) == table[same]:
        table["notebooks"] = dict(sorted({**previous.get("notebooks", {}), **table["notebooks"]}.items()))


BENCHMARK_FILE = ROOT / "chapters" / "benchmark.json"


def benchmark(paths, timeout=900, out=BENCHMARK_FILE):
    """Execute each notebook (a copy) in a fresh process, one at a time; its wall time and peak memory.

    Peak memory is the largest resident set of any one process of the run (the kernel, or a worker it
    started), as the operating system reports it for the finished process tree (getrusage's ru_maxrss).
    Writes {"machine": ..., "notebooks": {name: {"seconds", "peak_MiB"}}} to `out` and returns it; run on some
    notebooks, it keeps the others' figures if `out` holds a benchmark of the same kind of machine.
    """
    table = {"machine": {**{k: v for k, v in machine().items() if k not in ("kernels", "threads")},
                         "cores": os.cpu_count()}, "notebooks": {}}
    with tempfile.TemporaryDirectory() as folder:
        for path in notebook_paths(paths):
            copy = Path(folder) / path.name
            code = (f"from dltoolbox.course.notebooks import execute; "
                    f"execute({str(path)!r}, timeout={int(timeout)}, out={str(copy)!r})")
            start = time.perf_counter()
            child = subprocess.Popen([sys.executable, "-c", code])
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.perf_counter() - start
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError(f"{path}: the notebook failed (exit status {os.waitstatus_to_exitcode(status)})")
            kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024  # macOS: bytes
            table["notebooks"][_name(path)] = {"seconds": round(seconds, 1), "peak_MiB": round(kib / 1024, 1)}
            print(f"  {_name(path)}: {seconds:.0f} s, {kib / 1024:.0f} MiB", flush=True)
    _keep_other_notebooks(out, table, "machine")
    Path(out).write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    return table


def benchmark_markdown(table):
    """The benchmark as a Markdown table, with the machine it ran on."""
    m = table["machine"]
    cores = f"{m['cores']} CPU cores" if "cores" in m else f"{m.get('threads', '?')} thread(s)"
    rows = [f"Measured on {m['cpu']} ({m['arch']}, {cores}), torch {m['torch']}, Python {m['python']}, "
            "each notebook alone in a fresh kernel:", "",
            "| notebook | wall time (s) | peak memory (MiB) |", "|---|---|---|"]
    rows += [f"| {Path(name).name} | {r['seconds']:.0f} | {r['peak_MiB']:.0f} |"  # short: the numbers in view on a phone
             for name, r in table["notebooks"].items()]
    return "\n".join(rows)


README_MARKERS = ("<!-- benchmark -->\n", "<!-- /benchmark -->\n")


def write_readme_benchmark(table, readme=ROOT / "README.md"):
    """Put the benchmark's Markdown table between the README's benchmark markers (only there)."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    start, end = README_MARKERS
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{readme} needs one {start.strip()} ... {end.strip()} pair of markers for the table")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    readme.write_text(head + start + benchmark_markdown(table) + "\n" + end + tail, encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dltoolbox.course.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="re-execute notebooks and store their outputs")
    run.add_argument("paths", nargs="*", default=[str(ROOT / "chapters")])
    run.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    spread_ = sub.add_parser("spread", help="results of every notebook under several CPU kernel settings")
    spread_.add_argument("paths", nargs="*", default=[str(ROOT / "chapters")])
    spread_.add_argument("--settings", default=",".join(KERNEL_SETTINGS),
                         help=f"comma-separated, from {', '.join(KERNEL_SETTINGS)} (default: all)")
    spread_.add_argument("--jobs", type=int, default=2, help="notebooks executed at once (one CPU thread each)")
    spread_.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    spread_.add_argument("--out", default=str(SPREAD_FILE))
    spread_.add_argument("--reuse", action="append", default=[], metavar="SETTING=FOLDER",
                         help="read that setting's results from notebooks already executed with it "
                              "(e.g. native=chapters: the stored outputs)")
    spread_.add_argument("--keep", default="", metavar="SETTINGS",
                         help="comma-separated settings whose values stay as --out holds them (after a re-run "
                              "that cannot change the results, e.g. of an exercise below the results cell)")
    clean_ = sub.add_parser("clean", help="tidy stored outputs without executing: progress bars, stray True, "
                                          "the results table, controls that need a kernel")
    clean_.add_argument("paths", nargs="*", default=[str(ROOT / "chapters")])
    bench = sub.add_parser("benchmark", help="wall time and peak memory of each notebook, one at a time")
    bench.add_argument("paths", nargs="*", default=[str(ROOT / "chapters")])
    bench.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    bench.add_argument("--out", default=str(BENCHMARK_FILE))
    args = parser.parse_args(argv)
    if args.command == "clean":
        done = clean_files(args.paths)
        for path, changes in done.items():
            print(f"cleaned {path}: " + ", ".join(f"{what} {n}" for what, n in changes.items() if n))
        print(f"{len(done)} notebook(s) rewritten")
        return 0
    os.environ.setdefault("DLTOOLBOX_DEVICE", "cpu")  # stored outputs are the CPU run's
    if args.command == "benchmark":
        table = benchmark(args.paths, timeout=args.timeout, out=args.out)
        print(benchmark_markdown(table))
        print(f"wrote {args.out}")
        if Path(args.out).resolve() == BENCHMARK_FILE.resolve():
            write_readme_benchmark(table)
            print("updated the table in README.md")
        return 0
    if args.command == "spread":
        reuse = dict(item.split("=", 1) for item in args.reuse)
        spread(args.paths, [s.strip() for s in args.settings.split(",") if s.strip()], timeout=args.timeout,
               jobs=args.jobs, out=args.out, reuse=reuse, keep=[s for s in args.keep.split(",") if s])
        print(f"wrote {args.out}")
        return 0
    for path in notebook_paths(args.paths):
        start = time.perf_counter()
        print(f"running {path} ...", flush=True)
        execute(path, timeout=args.timeout)
        print(f"  done in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
