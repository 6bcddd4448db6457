"""Chapter 7's experiments (chapters/07_scale/scale.ipynb): the model family's widths and its parallel
training runs, the learning-rate sweep that chooses each width's rate, the landmark systems the notebook
accounts for, and the notebook's kernel-free explorer of the fitted law.

    python -m dltoolbox.experiments.sweeps scaling   # each width's learning rate, on the validation text
"""
import math
from dataclasses import asdict

import numpy as np

from ..compare import run_parallel
from ..scaling import RunConfig, char_corpus, train_run

# --- the model family, trained in parallel -------------------------------------------------------------

FAMILY_WIDTHS = (8, 16, 32, 48, 64)


def _run(args):
    config, eval_stream = args
    return train_run(config, char_corpus(), eval_stream=eval_stream)


def run_family(configs, processes=2, eval_stream="valid", desc="training the family"):
    """Train every config, `processes` at a time in fresh processes (runs are independent); same order."""
    return run_parallel(_run, [(c, eval_stream) for c in configs], processes=processes, desc=desc)


# --- the learning-rate sweep (a command; the notebook reads its table) -------------------------------

SWEEP_LRS = (3e-3, 1e-2, 3e-2, 1e-1)


def lr_sweep(widths=FAMILY_WIDTHS, lrs=SWEEP_LRS, seeds=(100, 101), processes=2, **config):
    """Train every width at every learning rate (seeds not used later) and score it on validation text.

    Returns the table in dltoolbox.experiments.sweeps' form, one arm per width: {"rows": [{"width", "N",
    "lr", "seed", "valid_loss"}...], "settings": ["lr"], "metric": "valid_loss", "goal": "min", "arm":
    "width", "config": ...}; each width gets the rate with the lowest mean final validation loss — the same
    search for every size (sweeps.chosen reads the choice).
    """
    configs = [RunConfig(width=w, lr=lr, seed=s, **config) for s in seeds for w in widths for lr in lrs]
    runs = run_family(configs, processes=processes, eval_stream="valid", desc="learning-rate sweep")
    rows = [{"width": r["config"]["width"], "N": r["N"], "lr": r["config"]["lr"], "seed": r["config"]["seed"],
             "valid_loss": r["loss"][-1]} for r in runs]
    settings = asdict(RunConfig(width=widths[0], **config))
    for key in ("width", "lr", "seed", "tokens_per_step"):
        settings.pop(key)
    return {"rows": rows, "settings": ["lr"], "metric": "valid_loss", "goal": "min", "arm": "width",
            "config": settings}


# --- what landmark systems cost --------------------------------------------------------------------

# The papers' own figures (``source`` names the bib key); N = parameters, D = training tokens, devices and
# days as reported. Missing entries are derived by :func:`dltoolbox.scaling.account`, which says how.
LANDMARKS = [
    {"system": "seq2seq (Sutskever et al.)", "year": 2014, "source": "sutskever2014", "N": 384e6,
     "devices": 8, "device": "GPU", "days": 10, "era": 2014},
    {"system": "attention (Bahdanau et al.)", "year": 2015, "source": "bahdanau2015",
     "devices": 1, "device": "GPU", "days": 111 / 24, "era": 2014},
    {"system": "Transformer base", "year": 2017, "source": "vaswani2017", "flops": 3.3e18,
     "devices": 8, "device": "P100", "days": 0.5},
    {"system": "Transformer big", "year": 2017, "source": "vaswani2017", "flops": 2.3e19,
     "devices": 8, "device": "P100", "days": 3.5},
    {"system": "AlphaStar league", "year": 2019, "source": "vinyals2019alphastar", "N": 139e6,
     "devices": 12 * 32, "device": "TPUv3", "days": 44},
    {"system": "GPT-3", "year": 2020, "source": "brown2020language", "N": 175e9, "D": 300e9, "flops": 3.14e23},
    {"system": "Chinchilla", "year": 2022, "source": "hoffmann2022chinchilla", "N": 70e9, "D": 1.4e12},
]


# ResNet-50 on ImageNet, the records behind "10 seconds, of course, using a lot of parallelism" (secondary
# sources; MLPerf 2020's "under 30 seconds on 4,096 TPU v3 chips" has no single paper to cite)
IMAGENET_RECORDS = [
    {"who": "Goyal et al. 2017", "source": "goyal2017accurate", "devices": 256, "device": "P100 GPUs", "seconds": 3600},
    {"who": "Akiba et al. 2017", "source": "akiba2017extremely", "devices": 1024, "device": "P100 GPUs", "seconds": 900},
    {"who": "Ying et al. 2018", "source": "ying2018image", "devices": 1024, "device": "TPU v3 chips", "seconds": 132},
    {"who": "Yamazaki et al. 2019", "source": "yamazaki2019yet", "devices": 2048, "device": "V100 GPUs", "seconds": 74.7},
]


# --- the notebook's explorer of the fitted law -------------------------------------------------------

def explorer_html(surface, cpu_rate, accelerator_rate, log10_n=(3, 9), log10_d=(4, 12), start=(60_000, 256_000)):
    """A kernel-free explorer of the fitted L(N, D): two sliders and the prediction, computed in the page.

    Returns HTML with a small inline script (no library, no network), so it works in the static book and
    in Jupyter alike: predicted loss, compute 6ND, time at `cpu_rate` and at `accelerator_rate` (FLOP/s).
    """
    import json

    params = {k: float(surface[k]) for k in ("E", "A", "alpha", "B", "beta")}
    if not all(np.isfinite(v) for v in params.values()) or cpu_rate <= 0 or accelerator_rate <= 0:
        raise ValueError("the surface's parameters must be finite and the rates positive")
    n0, d0 = (math.log10(v) for v in start)
    return f"""<div class="scale-explorer" id="scale-explorer" style="max-width: 36em">
<label>N (weights): <input type="range" id="scale-n" min="{log10_n[0]}" max="{log10_n[1]}" step="0.1" value="{n0:.1f}"
  aria-label="model size, log10 of the weights"> <output id="scale-n-out"></output></label><br>
<label>D (tokens): <input type="range" id="scale-d" min="{log10_d[0]}" max="{log10_d[1]}" step="0.1" value="{d0:.1f}"
  aria-label="training tokens, log10"> <output id="scale-d-out"></output></label>
<p id="scale-prediction" aria-live="polite"></p>
<script>
(function () {{
  const p = {json.dumps(params)}, cpu = {float(cpu_rate)!r}, acc = {float(accelerator_rate)!r};
  const fmt = x => x >= 1e4 ? x.toExponential(1) : x.toFixed(0);
  const hours = s => s / 3600 < 1 ? (s / 60).toPrecision(2) + " min" : (s / 3600).toPrecision(3) + " h";
  function update() {{
    const N = Math.pow(10, +document.getElementById("scale-n").value);
    const D = Math.pow(10, +document.getElementById("scale-d").value);
    const L = p.E + p.A * Math.pow(N, -p.alpha) + p.B * Math.pow(D, -p.beta), C = 6 * N * D;
    const G = Math.pow(p.alpha * p.A / (p.beta * p.B), 1 / (p.alpha + p.beta));
    const Nopt = G * Math.pow(C / 6, p.beta / (p.alpha + p.beta));
    document.getElementById("scale-n-out").textContent = fmt(N);
    document.getElementById("scale-d-out").textContent = fmt(D);
    document.getElementById("scale-prediction").textContent =
      "predicted test loss " + L.toFixed(3) + " nats/char; compute 6ND = " + C.toExponential(2) +
      " FLOPs: " + hours(C / cpu) + " on one core of this CPU, " + hours(C / acc) +
      " on one accelerator; for that compute the fit prefers N = " + fmt(Nopt) + ", D = " + fmt(C / 6 / Nopt);
  }}
  document.getElementById("scale-n").addEventListener("input", update);
  document.getElementById("scale-d").addEventListener("input", update);
  update();
}})();
</script></div>"""
