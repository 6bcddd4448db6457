"""Plot helpers shared by every chapter: one look, and training histories drawn from dicts of lists."""
import matplotlib

import matplotlib.pyplot as plt

STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "font.size": 11,
}
PANEL_DPI = 200  # pixels per inch of a figure stored by `show`: twice the CSS size, sharp on a phone's screen


def setup():
    """Apply the course's matplotlib style; in IPython, figures are stored at twice their size (sharp on a
    phone or a high-density screen, shown at their usual size)."""
    matplotlib.rcParams.update(STYLE)
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


def _panels(fig, renderer):
    """[(bbox in display pixels, the axes)] of each panel: a visible axes with the colorbars drawn beside it."""
    from matplotlib.transforms import Bbox

    main = [ax for ax in fig.axes if ax.get_visible() and getattr(ax, "_colorbar", None) is None]
    boxes = {id(ax): [ax.get_tightbbox(renderer)] for ax in main}
    for bar in (ax for ax in fig.axes if ax.get_visible() and getattr(ax, "_colorbar", None) is not None):
        left = bar.get_window_extent(renderer).x0
        owner = min(main, key=lambda ax: abs(left - ax.get_window_extent(renderer).x1))
        boxes[id(owner)].append(bar.get_tightbbox(renderer))
    return [(Bbox.union(boxes[id(ax)]), ax) for ax in main]


def show(fig, alt=None):
    """Show a figure so that it reads on a phone: a figure of several panels side by side becomes one
    image per panel, in a row that wraps (side by side on a wide screen, one above the other on a phone);
    a figure of one panel is shown as it is. Each image is stored at twice its size (`PANEL_DPI`).

    `alt`: one text per panel for readers who cannot see it; by default each panel's title and axis
    labels. The figure's suptitle becomes the caption. The figure is closed.
    """
    import base64
    import html
    import io

    from IPython.display import HTML, display

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = _panels(fig, renderer)
    if len(panels) < 2:
        display(fig)
        plt.close(fig)
        return
    if alt is not None and len(alt) != len(panels):
        raise ValueError(f"the figure has {len(panels)} panels, and {len(alt)} alt texts were given")
    title = fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""
    to_inches = fig.dpi_scale_trans.inverted()
    images = []
    for k, (box, ax) in enumerate(panels):
        inches = box.transformed(to_inches).padded(0.04)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=PANEL_DPI, bbox_inches=inches)
        if alt is not None:
            text = str(alt[k])
        else:
            named = [f"{what}: {label}" for what, label in (("x axis", ax.get_xlabel()), ("y axis", ax.get_ylabel()))
                     if label]
            text = "; ".join([f"panel {k + 1} of {len(panels)}" + (f" of {title}" if title else ""),
                              ax.get_title() or "untitled"] + named)
        width = round(inches.width * matplotlib.rcParams["figure.dpi"])
        height = round(inches.height * matplotlib.rcParams["figure.dpi"])
        images.append(f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}" '
                      f'alt="{html.escape(text)}" width="{width}" height="{height}" style="max-width: 100%; height: auto">')
    plt.close(fig)
    caption = f"\n<figcaption>{html.escape(title)}</figcaption>" if title else ""
    row = '<div class="course-panels-row" style="display: flex; flex-wrap: wrap; gap: 0.5em 1em; align-items: flex-end">'
    display(HTML('<figure class="course-panels" style="margin: 0.5em 0">\n' + row + "\n" + "\n".join(images)
                 + f"\n</div>{caption}\n</figure>"))


def plot_history(history, keys=None, xlabel="step", ylabel=None, ax=None, logy=False, title=None):
    """Draw the curves of a training history (a dict of equal-length lists) on one axis."""
    if not isinstance(history, dict) or not history:
        raise ValueError("history must be a non-empty dict of lists, as returned by a training function")
    keys = list(history) if keys is None else list(keys)
    missing = [k for k in keys if k not in history]
    if missing:
        raise KeyError(f"history has no {missing}; it has {sorted(history)}")
    if ax is None:
        _, ax = plt.subplots()
    for key in keys:
        values = history[key]
        ax.plot(range(1, len(values) + 1), values, label=key)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(keys) > 1:
        ax.legend()
    return ax


def _browser(kind, frames, label, title, uid_source, first_html, update):
    """The slider and script shared by the kernel-free browsers: `frames` (JSON-able) swapped by `update`."""
    import hashlib
    import html
    import json

    from IPython.display import HTML

    uid = kind[:1] + "b-" + hashlib.sha1(json.dumps(uid_source).encode()).hexdigest()[:10]
    data = json.dumps(frames).replace("</", "<\\/")  # a frame's "</script>" must not end the script
    heading = f"<p><strong>{html.escape(title)}</strong></p>\n" if title else ""
    return HTML(f"""<div class="{kind}" id="{uid}">
{heading}<label>{html.escape(label)}: <input type="range" min="0" max="{len(frames) - 1}" step="1" value="0"
  aria-label="{html.escape(label)}"> <output aria-live="polite">{html.escape(frames[0]['caption'])}</output></label>
{first_html}
<script>
(function () {{
  const root = document.getElementById("{uid}"), frames = {data};
  const slider = root.querySelector("input"), out = root.querySelector("output");
  slider.addEventListener("input", function () {{
    const f = frames[+slider.value];
    {update} out.textContent = f.caption;
  }});
}})();
</script></div>""")


def figure_browser(frames, label="figure", title=None, dpi=80):
    """A kernel-free figure browser: a slider that flips between precomputed figures, in the page itself.

    `frames`: a list of (caption, matplotlib Figure, alt text). Each figure is drawn once, to a PNG inside
    the HTML (and closed); a small inline script swaps image, alt text and caption as the slider moves, so
    it works in the static book with no kernel and no network, as in Jupyter. Returns an IPython HTML
    object. The browser's id is derived from its captions, so the same frames give the same HTML.
    """
    import base64
    import html
    import io

    if not frames:
        raise ValueError("figure_browser needs at least one frame")
    shown = []
    for caption, fig, alt in frames:
        if not alt or not str(alt).strip():
            raise ValueError(f"frame {caption!r} has no alt text")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        shown.append({"src": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(),
                      "alt": str(alt), "caption": str(caption)})
    first = shown[0]
    img = f'<div><img src="{first["src"]}" alt="{html.escape(first["alt"])}" style="max-width: 100%"></div>'
    return _browser("figure-browser", shown, label, title, [f["caption"] for f in shown], img,
                    'const img = root.querySelector("img"); img.src = f.src; img.alt = f.alt;')


def text_browser(frames, label="frame", title=None):
    """A kernel-free text browser: a slider that flips between precomputed texts (samples, say) in the page.

    `frames`: a list of (caption, text). The text is shown preformatted (wrapped at the page's width); the
    same inline script as `figure_browser` swaps it with the caption, so it works with no kernel and no
    network. Returns an IPython HTML object; the same frames give the same HTML.
    """
    import html

    if not frames:
        raise ValueError("text_browser needs at least one frame")
    shown = []
    for caption, text in frames:
        if not str(text).strip():
            raise ValueError(f"frame {caption!r} has no text")
        shown.append({"caption": str(caption), "text": str(text)})
    pre = (f'<pre style="white-space: pre-wrap; overflow-wrap: anywhere">{html.escape(shown[0]["text"])}</pre>')
    return _browser("text-browser", shown, label, title, shown, pre,
                    'root.querySelector("pre").textContent = f.text;')
