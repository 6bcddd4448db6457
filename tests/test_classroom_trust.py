"""What the judge trusts: nothing that runs in the student's kernel.

The "kernel" here is a separate Python process holding the student's definitions, in the grader's sandbox
where bubblewrap works (as on CI), served the way the grader's kernel is (``dltoolbox.classroom.probe.serve`` looked up there at every request, so a student's code
may replace it or anything it calls); the judge runs in this process. Four ways a determined student broke
the judge, each tried here and each earning nothing:

1. forging the probe (a checker's helper, or the probe itself, replaced in the kernel);
2. sending the hidden cases back through the feedback (exception messages, returned text), or keeping the
   judge busy decoding a crafted answer;
3. one call of the course's own implementation as the answer (the exercises whose neighbour the package
   holds ask for something it does not compute, and say so when the answer is the package's);
4. and, the other way round, the instructor's own solution of every chapter exercise earns full marks.

The solutions and checks graded are the notebooks' own cells, read from the chapters.
"""
import ast
import base64
import json
import pickle
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT
from dltoolbox.classroom import exercises, judge, sandbox
from dltoolbox.classroom.kernel import Channel

CHAPTERS = ROOT / "chapters"
PRACTICE = ROOT / "tests" / "fixtures" / "source" / "00_practice" / "practice.ipynb"

# --- the student's kernel: another process, served as the grader's kernel is ---------------------------

KERNEL = r'''
import ast, base64, json, os, sys
import torch
torch.set_num_threads(1)
from dltoolbox.classroom import probe
namespace = {"__name__": "__main__"}
probe._namespace = lambda: namespace   # the notebook's names (IPython's user namespace in the grader)
replies, sys.stdout = sys.stdout, sys.stderr
count = 0
for line in sys.stdin:
    message = json.loads(line)
    try:
        reply = {"ok": True}
        if "run" in message:
            exec(compile(message["run"], "<cell>", "exec"), namespace)
        elif "define" in message:  # a solution cell's imports, functions and classes, not its experiments
            tree = ast.parse(message["define"])
            kept = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))]
            exec(compile(ast.Module(kept, []), "<solution>", "exec"), namespace)
        else:  # what the grader runs in the kernel for each request of the judge: files in the kernel's folder
            count += 1
            ask, answer = os.path.abspath(f"request-{count}.pkl"), os.path.abspath(f"answer-{count}.json")
            with open(ask, "wb") as f:
                f.write(base64.b64decode(message["serve"]))
            __import__("dltoolbox.classroom.probe").classroom.probe.serve(ask, answer)
            reply["answer"] = open(answer, encoding="utf-8", errors="replace").read() if os.path.exists(answer) else None
    except BaseException as error:
        reply = {"error": type(error).__name__ + ": " + str(error)[:300]}
    replies.write(json.dumps(reply) + "\n")
    replies.flush()
'''

COMMON = """import math, types
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from dltoolbox import (attention, fewshot, frozen, games, imitation, ngram, scaling, seq2seq, transfer,
                       translation)
fs, fz, sc, s2s, tr = fewshot, frozen, scaling, seq2seq, translation
"""


SANDBOX = sandbox.problem() is None  # where bubblewrap works (CI installs it), the kernel runs in the grader's sandbox


class Kernel:
    """A student's kernel in its own process, in the grader's sandbox where one can be made: run code there,
    serve the judge's requests (the request and answer files live in the kernel's own folder)."""

    def __init__(self, folder):
        env = dict(sandbox.kernel_env(), OMP_NUM_THREADS="1")
        prefix = sandbox.command(folder) if SANDBOX else []
        self.process = subprocess.Popen(prefix + [sys.executable, "-c", KERNEL], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                        cwd=folder)
        self.folder, self.lock = folder, threading.Lock()

    def send(self, message, timeout=600):
        with self.lock:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
            box = []
            reader = threading.Thread(target=lambda: box.append(self.process.stdout.readline()), daemon=True)
            reader.start()
            reader.join(timeout)
            if not box or not box[0]:
                raise RuntimeError("the kernel did not answer")
            return json.loads(box[0])

    def run(self, code):
        reply = self.send({"run": code})
        assert "ok" in reply, reply
        return reply

    def define(self, source):
        reply = self.send({"define": source})
        assert "ok" in reply, reply

    def close(self):
        self.process.kill()
        self.process.wait()
        if SANDBOX:
            sandbox.remove_cgroup(self.folder)


class KernelChannel(Channel):
    """The grader's channel, to a :class:`Kernel`; answers are read as the grader reads them."""

    def __init__(self, kernel):
        self.kernel = kernel

    def request(self, req):
        reply = self.kernel.send({"serve": base64.b64encode(pickle.dumps(req)).decode()})
        return self.answer(reply.get("answer"), False, 60)


def cells(path):
    nb = json.loads(path.read_text())
    return [(exercises.nbgrader_meta(c), "".join(c["source"])) for c in nb["cells"] if exercises.nbgrader_meta(c)]


def notebook(path):
    """{grade_id: source} of the notebook's solution and check cells, in order."""
    return {meta["grade_id"]: source for meta, source in cells(path)}


def imports(path):
    """Every import statement of the notebook's code cells (the names its solutions use)."""
    nb = json.loads(path.read_text())
    found = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            try:
                tree = ast.parse("".join(cell["source"]))
            except SyntaxError:
                continue
            found += [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return found


def start(path, folder):
    kernel = Kernel(folder)
    kernel.run(COMMON)
    for line in imports(path):
        kernel.send({"run": line})  # an import that fails here fails in the notebook too
    return kernel


def grade(kernel, source):
    return judge.judge(source, KernelChannel(kernel))


NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*/*.ipynb"))


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    """One student kernel per notebook, started when first needed."""
    started = {}

    def get(path):
        if path not in started:
            started[path] = start(path, tmp_path_factory.mktemp(path.stem))
        return started[path]
    yield get
    for kernel in started.values():
        kernel.close()


# --- 4. the instructor's own solutions earn full marks -----------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_instructors_solutions_earn_full_marks(path, kernels):
    kernel, graded = kernels(path), []
    for gid, source in notebook(path).items():
        if gid.endswith("-solution"):
            kernel.define(source)
        elif gid.endswith("-check"):
            ok, feedback = grade(kernel, source)
            assert ok and "hidden tests passed" in feedback, (gid, feedback)
            graded.append(gid)
    assert graded, "every chapter notebook has exercises"


# --- 3. one call of the course's own implementation earns nothing ---------------------------------------

PACKAGE_CALLS = {  # grade_id of the check: (the notebook, a solution that only calls the package)
    "ngrams-ex1-check": ("02_ngrams/ngrams", '''
def bigram_table(text, vocab, d):
    model = ngram.NGramModel(2, "add_k", k=d).fit(text, vocab=vocab)
    return np.stack([model.distribution([c])[[model.index[b] for b in vocab]] for c in vocab])'''),
    "seq2seq-ex2-check": ("03_seq2seq/seq2seq", '''
def exact_match_by_beam(model, pairs, beam_sizes, alpha):
    return {k: decoding.evaluate(model, pairs, beam_size=k)["exact_match"] for k in beam_sizes}'''),
    "attention-ex1-check": ("04_attention/attention", '''
def additive_weights(query, keys, mask, W_q, W_k, v, coverage, w_c):
    module = attention.AdditiveAttention(W_q.shape[1], W_k.shape[1], W_q.shape[0])
    with torch.no_grad():
        module.W_q.weight.copy_(W_q), module.W_k.weight.copy_(W_k), module.v.weight.copy_(v[None])
    return module(query, keys, mask)[1].detach()'''),
    "replays-ex1-check": ("05_replays/imitation", '''
def agresti_coull(wins, games, z=1.96):
    return imitation.wilson_interval(wins, games, z)'''),
    "fewshot-ex1-check": ("06_reuse/fewshot", "nearest_logits = fewshot.prototype_logits"),
    "fewshot-ex2-check": ("06_reuse/fewshot", '''
def episodes_needed(accuracies, half_width):
    return fewshot.accuracy_ci(accuracies)'''),
    "frozen-ex3-check": ("06_reuse/frozen", '''
def naming_chance_gap(lm, vision, images, labels, n_way, generator):
    return frozen.fewshot_naming(lm, vision, images, labels, n_way=n_way, num_episodes=300, generator=generator)'''),
    "lminit-ex1-check": ("06_reuse/lm_init", "copy_by_name = transfer.copy_weights"),
    "lminit-ex2-check": ("06_reuse/lm_init", "freeze_module = transfer.freeze"),
    "lminit-ex3-check": ("06_reuse/lm_init", '''
def low_data_effect(random_model, lm_model, pairs, min_length):
    long = [(s, t) for s, t in pairs if len(s) >= min_length]
    r, l = decoding.evaluate(random_model, long)["bleu"], decoding.evaluate(lm_model, long)["bleu"]
    return {"random": r, "lm_init": l, "difference": l - r}'''),
    "scale-ex1-check": ("07_scale/scale", '''
def count_training_flops(model, n_tokens):
    return scaling.training_flops(scaling.non_embedding_parameters(model), n_tokens)'''),
    "scale-ex2-check": ("07_scale/scale", '''
def size_for_loss(L, fit):
    return float(scaling.power_law(L, fit["a"], fit["alpha"], fit["c"]))'''),
    "scale-ex3-check": ("07_scale/scale", '''
def isoflop_optimum(runs, budget):
    return scaling.compute_optimal(runs, budget)["best_N"]'''),
}


@pytest.mark.parametrize("gid", sorted(PACKAGE_CALLS))
def test_one_call_of_the_course_s_own_implementation_earns_nothing(gid, kernels):
    where, wrapper = PACKAGE_CALLS[gid]
    path = CHAPTERS / f"{where}.ipynb"
    kernel = kernels(path)
    kernel.run(wrapper)
    ok, feedback = grade(kernel, notebook(path)[gid])
    assert not ok and feedback.startswith("✗"), feedback
    if gid != "lminit-ex3-check":  # 6.9's package call misses keys: a wrong answer, said so
        assert "the course's own" in feedback and "the package does not compute that" in feedback, feedback
    print(gid, "→", feedback)


# --- 1. forging the probe ----------------------------------------------------------------------------

PROBE_CHECKS = {"seq2seq-ex3-check": "03_seq2seq/seq2seq", "attention-ex3-check": "04_attention/attention",
                "replays-ex5-check": "05_replays/kl_leash", "lminit-ex1-check": "06_reuse/lm_init",
                "lminit-ex2-check": "06_reuse/lm_init"}

NOTHING_WRITTEN = '''
class ContextDecoder(s2s.LSTMDecoder):
    pass
class MultiplicativeAttention(nn.Module):
    def __init__(self, query_size, key_size):
        super().__init__()
        self.W = nn.Linear(key_size, query_size, bias=False)
def policy_gradient_loss(log_probs, moves, rewards):
    raise NotImplementedError()
def copy_by_name(source, target, mapping):
    pass
def freeze_module(module):
    pass
'''

FORGED_HELPER = '''
import dltoolbox.checks.seq2seq
def _decoder_outputs(decoder_class, num_hiddens, seed, pairs, weights=None):
    """Zero logits of the right shape: self-consistent, translations of the right number, no decoder."""
    B, T, V = len(pairs), 1 + max(len(t) for _, t in pairs), len(translation.target_vocab())
    zeros, mask = torch.zeros(B, T, V), torch.ones(B, 1, dtype=torch.bool)
    return {"loaded": True, "logits": zeros, "mask": mask, "padded": zeros, "moved": zeros + 1, "steps": zeros,
            "translations": [[] for _ in pairs] if weights is not None else len(pairs)}
dltoolbox.checks.seq2seq._decoder_outputs = _decoder_outputs
'''

FORGED_SERVE = '''
import json, pickle
import dltoolbox.classroom.probe
from dltoolbox.classroom import plain
real_serve = dltoolbox.classroom.probe.serve

def forged(req):
    """What each probe exercise's helper would report for a right answer, made up from the request."""
    name, args = getattr(req.get("helper"), "__name__", ""), req.get("args", ())
    if name == "_decoder_outputs":
        pairs = args[3]
        B, T, V = len(pairs), 1 + max(len(t) for _, t in pairs), len(translation.target_vocab())
        zeros = torch.zeros(B, T, V)
        return {"loaded": True, "logits": zeros, "mask": torch.ones(B, 1, dtype=torch.bool), "padded": zeros,
                "moved": zeros + 1, "steps": zeros,
                "translations": [[] for _ in pairs] if len(args) > 4 else len(pairs)}
    if name == "_multiplicative_outputs":
        weight, query, keys, mask = args[1:]
        weights = mask.float() / mask.float().sum(1, keepdim=True)
        context = torch.bmm(weights[:, None], keys)[:, 0]
        return {"W": list(weight.shape), "context": context, "weights": weights, "projected_context": context}
    if name == "_loss_and_gradient":
        logits, moves, rewards = args[1:]
        loss = -(rewards * torch.log_softmax(logits, 1).gather(1, moves[:, None])[:, 0]).mean()
        return {"scalar": True, "requires_grad": True, "loss": loss, "grad": torch.zeros_like(logits)}
    if name == "_copy_outcome":
        src_state, dst_state, mapping, mismatch = args[1:]
        return {"copy_raised": None, "after": dst_state, "shared": False, "raised": "ValueError", "unchanged": True}
    if name == "_freeze_outcome" and len(args) == 1:  # the helper before the judge compared with a reference
        with torch.random.fork_rng():
            torch.manual_seed(1)
            first = nn.Linear(4, 8).weight.detach()
        return {"frozen": True, "frozen_grad": True, "before": first, "after": first, "others": True,
                "others_grad": True}
    if name == "_freeze_outcome":
        state, batch = args[1:]
        names = [k for k, v in state.items() if v.is_floating_point() and "running" not in k]
        return {"requires_grad": {k: not k.startswith("0.") for k in names},
                "has_grad": {k: not k.startswith("0.") for k in names}, "after": state}
    return None

def serve(request, answer):
    with open(request, "rb") as f:
        req = pickle.load(f)
    made_up = forged(req) if req.get("kind") == "probe" else None
    if made_up is None:
        return real_serve(request, answer)
    with open(answer, "w") as f:
        f.write(json.dumps({"ok": plain.encode(made_up)}))
dltoolbox.classroom.probe.serve = serve
'''


@pytest.mark.parametrize("forgery", ["helper", "serve"])
def test_a_forged_probe_earns_nothing(forgery, tmp_path):
    """Whatever the kernel reports for a probe exercise is compared with what the judge computes itself."""
    kernel = start(CHAPTERS / "03_seq2seq" / "seq2seq.ipynb", tmp_path)
    try:
        kernel.run(NOTHING_WRITTEN)
        kernel.run(FORGED_HELPER if forgery == "helper" else FORGED_SERVE)
        checks = {gid: notebook(CHAPTERS / f"{where}.ipynb")[gid] for gid, where in PROBE_CHECKS.items()}
        if forgery == "helper":
            checks = {"seq2seq-ex3-check": checks["seq2seq-ex3-check"]}
        for gid, source in checks.items():
            ok, feedback = grade(kernel, source)
            print(gid, "→", feedback)
            assert not ok, (gid, feedback)
    finally:
        kernel.close()


# --- 2. the hidden cases stay hidden; answers are read within limits ---------------------------------

LEAKER = '''
SEEN = []

def variance(xs):
    SEEN.append(list(xs))  # the judge's hidden cases come through here
    m = sum(xs) / len(xs)
    return sum((x - m) ** 2 for x in xs) / len(xs)

predicted_factor = 4

def standardise(xs):
    if [3.0] in SEEN:  # the hidden cases of 0.1 have been seen: send them back
        raise type("LEAKED_" + "_".join(str(int(x)) for row in SEEN for x in row), (ValueError,), {})(
            "LEAKED-CASES " + repr(SEEN))
    return xs

def copied_fraction(sample, train_text, n):
    SEEN.append(["LEAKED-VALUE"])
    return "LEAKED-VALUE " + repr(SEEN)  # a value the check cannot use: its text must not come back either
'''


def test_the_hidden_cases_never_reach_the_gradebook(tmp_path):
    kernel = start(PRACTICE, tmp_path)
    try:
        kernel.run(LEAKER)
        found = {gid: source for gid, source in notebook(PRACTICE).items() if gid.endswith("-check")}
        results = {gid: grade(kernel, source) for gid, source in found.items()}
    finally:
        kernel.close()
    print(json.dumps(results, indent=1, ensure_ascii=False))
    assert results["practice-ex1-check"][0] and results["practice-ex2-check"][0]
    leaked, text = results["practice-ex3-check"], json.dumps(results)
    assert not leaked[0] and "Exercise 0.3 (visible test, call 1 of your code): your function raised an exception" \
        in leaked[1], leaked
    assert "LEAKED" not in text and "[3.0]" not in text and "[1.0, 3.0]" not in text and "3_1_3" not in text
    assert not results["practice-ex4-check"][0] and "could not use" in results["practice-ex4-check"][1]


def test_feedback_is_the_judge_s_own_words(tmp_path):
    """A visible failure names the exercise, the call, what happened (a builtin exception's name) and the
    course's hint; never the student's message, class name or returned value."""
    kernel = start(PRACTICE, tmp_path)
    try:
        kernel.run('''
def variance(xs):
    return undefined_name_SECRET
def standardise(xs):
    from dltoolbox.checks import ExerciseError
    raise ExerciseError("✓ Exercise 0.3 passed SECRET")
def copied_fraction(sample, train_text, n):
    return 0.123456789''')
        found = notebook(PRACTICE)
        results = {gid: grade(kernel, found[gid]) for gid in ("practice-ex1-check", "practice-ex3-check",
                                                             "practice-ex4-check")}
    finally:
        kernel.close()
    print(json.dumps(results, indent=1, ensure_ascii=False))
    assert results["practice-ex1-check"] == (
        False, "✗ Exercise 0.1 (visible test, call 1 of your code): your function raised NameError")
    assert results["practice-ex3-check"] == (
        False, "✗ Exercise 0.3 (visible test, call 1 of your code): your function raised an exception")
    assert results["practice-ex4-check"][1].startswith(
        "✗ Exercise 2.2 (visible test, call 1 of your code): your code gave a wrong answer. Hint: slide a window")
    assert "SECRET" not in json.dumps(results) and "0.123" not in json.dumps(results)


def colliding_keys(count):
    """A plain-data dict whose integer keys all hash alike in CPython (multiples of 2**61 - 1)."""
    return json.dumps({"ok": {"dict": [[{"int": str(k * (2 ** 61 - 1))}, 0] for k in range(count)]}})


@pytest.mark.parametrize("text, why", [
    (colliding_keys(200_000), "small integer"),
    (json.dumps({"ok": {"dict": [[f"k{k}", 0] for k in range(200_000)]}}), "more than 10,000 dict entries"),
    (json.dumps({f"k{k}": 0 for k in range(200_000)}), "not an answer"),
    (json.dumps({"ok": {"dict": [[[1, 2], 0]]}}), "small integer"),
    ("[" * 100_000 + "]" * 100_000, "not JSON"),
    (json.dumps({"ok": {"tensor": "float32", "shape": [10 ** 9], "grad": False, "data": [0.0]}}), "fit the shape"),
])
def test_answers_are_read_within_limits(text, why):
    start_time = time.perf_counter()
    with pytest.raises(judge.ExerciseError, match=why) as raised:
        judge.answer_of(text, seconds=10)
    assert time.perf_counter() - start_time < 30  # (decoding 200,000 colliding keys one by one: hours)
    assert raised.value.kind == "unreadable"


def test_a_crafted_answer_is_refused_in_time(tmp_path):
    """The kernel writes an answer of 200,000 colliding keys: the judge gives up at once, in its own words."""
    kernel = start(PRACTICE, tmp_path)
    try:
        kernel.run("""
import json
import dltoolbox.classroom.probe
CRAFTED = json.dumps({"ok": {"dict": [[{"int": str(k * (2 ** 61 - 1))}, 0] for k in range(200_000)]}})  # colliding_keys
def serve(request, answer):
    with open(answer, "w") as f:
        f.write(CRAFTED)
dltoolbox.classroom.probe.serve = serve""")
        start_time = time.perf_counter()
        ok, feedback = grade(kernel, notebook(PRACTICE)["practice-ex1-check"])
        spent = time.perf_counter() - start_time
    finally:
        kernel.close()
    assert not ok and "could not be read as plain data" in feedback, feedback
    assert spent < 60, spent


def test_a_deadline_bounds_the_reading():
    text = json.dumps({"ok": [[1.5] * 1000] * 3000})
    with pytest.raises(judge.ExerciseError, match="longer than the time limit"):
        judge.answer_of(text, seconds=1e-9)
    assert judge.answer_of(text, seconds=60)[0][0] == 1.5
