import json
import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from conftest import chapter_notebooks, load
from dltoolbox import plots, results
from dltoolbox.checks import ExerciseError, call, expect, passed


def test_report_rounds_and_unwraps_tensors():
    out = results.report({"bpc": 2.123456789, "n": torch.tensor(3), "acc": torch.tensor(0.5)}, digits=3)
    assert out == {"bpc": 2.123, "n": 3, "acc": 0.5}
    assert type(out["n"]) is int


@pytest.mark.parametrize("bad, message", [
    ({}, "non-empty"),
    ({"x": "high"}, "must be a number"),
    ({"x": math.nan}, "not finite"),
    ({"": 1.0}, "non-empty strings"),
    ({"x": True}, "must be a number"),
])
def test_report_rejects_bad_metrics(bad, message):
    with pytest.raises(ValueError, match=message):
        results.report(bad)


def _notebook(outputs, tags=("results",)):
    cell = {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": "r", "outputs": outputs,
            "execution_count": 1}
    return {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_read_results_parses_the_stored_output(tmp_path):
    path = tmp_path / "nb.ipynb"
    out = {"output_type": "execute_result", "execution_count": 1, "metadata": {},
           "data": {"text/plain": "{'bpc': 2.1,\n 'ppl': 4.3}"}}
    path.write_text(json.dumps(_notebook([out])))
    assert results.read_results(path) == {"bpc": 2.1, "ppl": 4.3}


def test_read_results_without_a_results_cell_is_an_error(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(_notebook([], tags=())))
    with pytest.raises(ValueError, match="exactly one cell tagged 'results'"):
        results.read_results(path)
    path.write_text(json.dumps(_notebook([])))
    with pytest.raises(ValueError, match="no stored result"):
        results.read_results(path)


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_notebook_has_results_then_assertions(path):
    metrics = results.read_results(path)
    assert metrics
    cells = [c for c in load(path)["cells"] if c["cell_type"] == "code"]
    index = next(i for i, c in enumerate(cells) if "results" in c["metadata"].get("tags", []))
    following = "".join(cells[index + 1]["source"]) if index + 1 < len(cells) else ""
    assert "assert" in following, f"{path.name}: the cell after the results cell must assert the chapter's claims"


def test_plot_history_draws_each_curve_and_rejects_unknown_keys():
    ax = plots.plot_history({"train": [3, 2, 1], "valid": [3, 2.5, 2]})
    assert len(ax.get_lines()) == 2
    with pytest.raises(KeyError, match="no \\['test'\\]"):
        plots.plot_history({"train": [1]}, keys=["test"])
    with pytest.raises(ValueError):
        plots.plot_history([])


def test_checks_pass_and_fail_with_hints(capsys):
    assert passed("1.1", "well done")
    assert "✓ Exercise 1.1 passed: well done" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="Hint: look again"):
        expect(False, "wrong shape", "look again")

    def todo():
        raise NotImplementedError()

    with pytest.raises(ExerciseError, match="not implemented yet"):
        call(todo, exercise="1.2")
    with pytest.raises(ExerciseError, match="raised ZeroDivisionError"):
        call(lambda: 1 / 0, exercise="1.3")
    assert call(lambda x: x + 1, 1, exercise="1.4") == 2


def test_report_outside_a_notebook_prints_nothing(capsys):
    results.report({"accuracy": 0.5})
    assert capsys.readouterr().out == ""


def test_table_is_markdown_in_jupyter_and_html_in_the_book():
    table = results.Table("| model | BLEU |\n|---|---|\n| attention | 98.8 |")
    assert table._repr_markdown_().startswith("| model |") and repr(table) == table.markdown
    html = table._repr_html_()
    assert '<table class="table">' in html and "<td>98.8</td>" in html and "<th>BLEU</th>" in html
    with pytest.raises(ValueError, match="table"):
        results.Table("no table here")


def test_results_page_says_what_a_range_across_kernels_is():
    from dltoolbox.course.book import sphinxext

    assert sphinxext.spread_text(None, 1.0) == "1 (range not measured)"
    assert sphinxext.spread_text({"min": 0.5, "max": 0.5}, 0.5) == "0.5"
    assert sphinxext.spread_text({"min": 0.93, "max": 0.955}, 0.95) == "0.95 (0.93–0.955)"
    sentence = sphinxext.stored_run_sentence({"cpu": "AMD EPYC", "arch": "x86_64", "kernels": "AVX2",
                                              "torch": "2.13.0", "threads": 1})
    assert "one stored run" in sentence and "AMD EPYC" in sentence and "AVX2" in sentence and "1 thread)" in sentence


def _executed(folder, name, metrics):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("report(...)", metadata={"tags": ["results"]}, execution_count=1)
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": repr(metrics)}, execution_count=1)]
    nb.cells = [cell]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)
    return folder / name


def test_spread_records_each_metrics_range_across_kernel_settings(tmp_path):
    from dltoolbox.course import notebooks

    source = _executed(tmp_path / "chapters", "demo.ipynb", {"accuracy": 0.9, "seeds": 3})
    _executed(tmp_path / "default", "demo.ipynb", {"accuracy": 0.85, "seeds": 3})
    table = notebooks.spread([source], [], out=tmp_path / "spread.json",
                             reuse={"native": tmp_path / "chapters", "default": tmp_path / "default"})
    entry = table["notebooks"]["demo.ipynb"]
    assert entry["accuracy"] == {"min": 0.85, "max": 0.9, "values": {"native": 0.9, "default": 0.85}}
    assert entry["seeds"]["min"] == entry["seeds"]["max"] == 3
    assert json.loads((tmp_path / "spread.json").read_text())["settings"]["default"] == {"ATEN_CPU_CAPABILITY": "default"}
    with pytest.raises(ValueError, match="unknown kernel setting"):
        notebooks.spread([source], ["avx9000"], out=tmp_path / "x.json")
    # a second notebook's spread into the same file keeps the first one's entry
    other = _executed(tmp_path / "chapters", "other.ipynb", {"accuracy": 0.5, "seeds": 3})
    _executed(tmp_path / "default", "other.ipynb", {"accuracy": 0.4, "seeds": 3})
    table = notebooks.spread([other], [], out=tmp_path / "spread.json",
                             reuse={"native": tmp_path / "chapters", "default": tmp_path / "default"})
    assert set(table["notebooks"]) == {"demo.ipynb", "other.ipynb"}
    assert json.loads((tmp_path / "spread.json").read_text())["notebooks"]["demo.ipynb"] == entry
    # with other settings the old entries are not comparable: they go
    table = notebooks.spread([other], [], out=tmp_path / "spread.json", reuse={"native": tmp_path / "chapters"})
    assert set(table["notebooks"]) == {"other.ipynb"}


def test_spread_keeps_the_named_settings_values_and_refreshes_the_rest(tmp_path):
    from dltoolbox.course import notebooks

    source = _executed(tmp_path / "chapters", "demo.ipynb", {"accuracy": 0.9, "seconds": 10.0, "seeds": 3})
    _executed(tmp_path / "default", "demo.ipynb", {"accuracy": 0.85, "seconds": 30.0, "seeds": 3})
    out = tmp_path / "spread.json"
    notebooks.spread([source], [], out=out, reuse={"native": tmp_path / "chapters", "default": tmp_path / "default"})
    _executed(tmp_path / "chapters", "demo.ipynb", {"accuracy": 0.9, "seconds": 12.0, "seeds": 3})  # re-run natively
    table = notebooks.spread([source], [], out=out, reuse={"native": tmp_path / "chapters"}, keep=["default"])
    entry = table["notebooks"]["demo.ipynb"]
    assert entry["seconds"] == {"min": 12.0, "max": 30.0, "values": {"native": 12.0, "default": 30.0}}
    assert entry["accuracy"]["values"] == {"native": 0.9, "default": 0.85}
    with pytest.raises(ValueError, match="holds no avx2 values"):
        notebooks.spread([source], [], out=out, reuse={"native": tmp_path / "chapters"}, keep=["avx2"])


def test_spread_runs_each_setting_in_its_own_environment(tmp_path):
    """A native run after a forced one (same worker) must not inherit the forced kernel's environment."""
    import nbformat

    from dltoolbox.course import notebooks

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        'import os\nfrom dltoolbox.results import report\n'
        'report({"forced": int(os.environ.get("ATEN_CPU_CAPABILITY") == "default")})',
        metadata={"tags": ["results"]})]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "probe.ipynb")
    table = notebooks.spread([tmp_path / "probe.ipynb"], ["default", "native"], jobs=1, timeout=120,
                             out=tmp_path / "spread.json")
    assert table["notebooks"]["probe.ipynb"]["forced"]["values"] == {"native": 0, "default": 1}


def test_figure_browser_embeds_every_frame_with_alt_text_and_is_deterministic():
    import matplotlib.pyplot as plt

    from dltoolbox import plots

    def frames():
        out = []
        for k in range(3):
            fig, ax = plt.subplots()
            ax.plot([0, 1], [0, k])
            out.append((f"slope {k}", fig, f"a line of slope {k}"))
        return out

    shown = frames()
    html = plots.figure_browser(shown, label="slope").data
    assert html.count("data:image/png;base64,") == 4  # the first frame shown, and all three in the script
    assert 'max="2"' in html and 'alt="a line of slope 0"' in html and "a line of slope 2" in html
    assert html == plots.figure_browser(frames(), label="slope").data
    assert not any(plt.fignum_exists(fig.number) for _, fig, _ in shown), "the figures are closed once drawn"
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="alt text"):
        plots.figure_browser([("x", fig, " ")])
    with pytest.raises(ValueError):
        plots.figure_browser([])


def test_text_browser_embeds_every_frame_escaped_and_is_deterministic():
    from dltoolbox import plots

    frames = [(f"order {n}", f"sample <{n}> & more") for n in (1, 2, 3)]
    html = plots.text_browser(frames, label="order", title="samples").data
    assert 'class="text-browser"' in html and 'max="2"' in html
    assert "<pre" in html and "sample &lt;1&gt; &amp; more" in html  # the first frame, escaped in the page
    assert "sample <3> & more" in html.split("<script>")[1]  # every frame in the script, as JSON text
    assert "</script" not in html.split("<script>")[1].split("</script>")[0]
    assert html == plots.text_browser(frames, label="order", title="samples").data
    with pytest.raises(ValueError, match="at least one"):
        plots.text_browser([])
    with pytest.raises(ValueError, match="no text"):
        plots.text_browser([("order 1", "  ")])


def test_text_browser_keeps_a_closing_script_tag_in_a_frame_from_ending_the_script():
    from dltoolbox import plots

    html = plots.text_browser([("a", "x </script><b>y"), ("b", "z")]).data
    script = html.split("<script>", 1)[1]
    assert script.index("</script>") > script.index("x <\\/script>")


def _shown(fig, **kwargs):
    """What plots.show displays: [(mime bundle)] captured instead of sent to a front end."""
    from unittest import mock

    from dltoolbox import plots

    seen = []
    with mock.patch("IPython.display.display", side_effect=lambda obj: seen.append(obj)):
        plots.show(fig, **kwargs)
    return seen


def test_show_splits_side_by_side_panels_into_images_that_wrap_each_with_alt_text():
    import re

    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    for k, ax in enumerate(axes):
        ax.plot([0, 1], [k, k + 1])
        ax.set(title=f"panel {k}", xlabel="step", ylabel="loss")
    image = axes[2].imshow([[0, 1], [1, 0]])
    fig.colorbar(image, ax=axes[2])
    fig.suptitle("three & more")
    fig.tight_layout()
    (html,) = _shown(fig)
    page = html.data
    imgs = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]+)" width="(\d+)" height="(\d+)" style="max-width: 100%; height: auto">',
                      page)
    assert len(imgs) == 3, "one image per panel; the colorbar goes with its panel, not on its own"
    assert imgs[0][0] == "panel 1 of 3 of three &amp; more; panel 0; x axis: step; y axis: loss"
    assert all(100 < int(w) < 450 for _, w, _ in imgs), "each panel about a third of the 900 px figure"
    assert int(imgs[2][1]) > int(imgs[1][1]), "the third panel is wider: its colorbar is in it"
    assert 'class="course-panels-row"' in page and "<figcaption>three &amp; more</figcaption>" in page
    assert not plt.fignum_exists(fig.number), "the figure is closed"


def test_show_shows_a_single_panel_as_it_is_and_checks_the_alt_texts():
    import matplotlib.pyplot as plt
    import pytest as _pytest

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    (shown,) = _shown(fig)
    assert shown is fig
    fig, axes = plt.subplots(1, 2)
    with _pytest.raises(ValueError, match="2 panels, and 1 alt texts"):
        _shown(fig, alt=["only one"])
    plt.close("all")


def test_reading_another_notebook_s_results_glues_nothing(tmp_path, monkeypatch):
    """A notebook that reads another's results (the scale chapter reads seq2seq's) must not glue that
    notebook's metrics as its own: the book would see each key twice."""
    from dltoolbox import results

    glued = []
    monkeypatch.setattr(results, "_glue", lambda out: glued.append(out))
    path = _executed(tmp_path, "other.ipynb", {"seeds": 4, "accuracy": 0.5})
    assert results.read_results(path) == {"seeds": 4, "accuracy": 0.5}
    assert glued == []
    results.report({"seeds": 4})
    assert glued == [{"seeds": 4}]
