"""Chapter 8's protocol (dltoolbox.experiments.bytes): six tasks framed as bytes, one generalist against six
specialists at an equal budget, each scored on what it trained on."""
import json
import math

import pytest
import torch

from dltoolbox import bytestream as bs
from dltoolbox import lm
from dltoolbox.experiments import bytes as B
from dltoolbox.experiments import sweeps

CLASSIFIER_ACCURACY = 0.85  # the softmax regression on the 357 test digits (measured 0.896; chance 0.1)


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return B.modalities()


def as_set(examples):
    return {tuple(ids.tolist()) for ids, _ in examples}


def test_the_data_is_deterministic(data):
    B._cache.pop(0)
    again = B.modalities()
    assert again is not data
    for split in B.SPLITS:
        for task in B.TASKS:
            assert len(again[split][task]) == len(data[split][task])
            for (i, m), (j, n) in zip(again[split][task], data[split][task]):
                assert torch.equal(i, j) and torch.equal(m, n)


def test_every_split_has_every_task_and_the_sizes_stated(data):
    assert set(data) == set(B.SPLITS) and all(set(data[s]) == set(B.TASKS) for s in B.SPLITS)
    sizes = {(r["split"], r["task"]): r["examples"] for r in B.describe(data)}
    assert sizes["train", "caption"] == B.CAPTION_IMAGES  # the task with the least data
    assert sizes["train", "image"] == sizes["train", "draw"] == B.DIGITS["train"]
    assert sizes["valid", "image"] == sizes["valid", "caption"] == sizes["valid", "draw"] == B.DIGITS["valid"]
    assert sizes["test", "image"] == 1797 - B.DIGITS["train"] - B.DIGITS["valid"]
    assert [sizes[s, "game"] for s in B.SPLITS] == [B.GAMES[s] for s in B.SPLITS]
    assert [sizes[s, "translation"] for s in B.SPLITS] == [B.TRANSLATION[f"n_{s}"] for s in B.SPLITS]
    assert min(sizes[s, "text"] for s in B.SPLITS) > 200
    assert min(r["predicted"] for r in B.describe(data)) > 0


@pytest.mark.parametrize("task", B.TASKS)
def test_no_example_is_in_two_splits(data, task):
    train, valid, test = (as_set(data[s][task]) for s in B.SPLITS)
    assert not train & valid and not train & test and not valid & test


def test_the_text_is_split_by_position_and_the_digits_by_index(data):
    from dltoolbox import ngram

    text = " ".join(ngram.load_corpus("devil").split())
    chunks = {s: [bs.decode(ids)[2] for ids, _ in data[s]["text"]] for s in B.SPLITS}
    assert all(len(c.encode()) == B.TEXT_BYTES for part in chunks.values() for c in part)
    assert text.startswith("".join(chunks["train"]))  # consecutive pieces from the start
    starts = {s: text.index("".join(chunks[s])) for s in B.SPLITS}
    assert starts["train"] + len("".join(chunks["train"])) <= starts["valid"]
    assert starts["valid"] + len("".join(chunks["valid"])) <= starts["test"]
    images, labels = B.digits()
    for split, first in (("train", 0), ("valid", B.DIGITS["train"]), ("test", B.DIGITS["train"] + B.DIGITS["valid"])):
        torch.testing.assert_close(bs.decode(data[split]["image"][0][0])[2], images[first], atol=1e-6, rtol=0)
        _, name, drawing = bs.decode(data[split]["draw"][0][0])
        assert name == B.NAMES[labels[first]] and torch.allclose(drawing, images[first], atol=1e-6)


def test_captions_and_drawings_pair_each_digit_with_its_name(data):
    images, labels = B.digits()
    for i, (ids, _) in enumerate(data["train"]["caption"][:50]):
        task, image, caption = bs.decode(ids)
        assert task == "caption" and caption == B.NAMES[labels[i]] and torch.allclose(image, images[i], atol=1e-6)
    for ids, _ in data["test"]["draw"]:
        task, name, image = bs.decode(ids)
        assert task == "draw" and name in B.NAMES and image.shape == (8, 8)


def test_game_records_are_framed_as_encode_game_frames_them(data):
    for ids, mask in data["test"]["game"][:20]:
        moves = bs.decode(ids)[2]  # decode replays the record: an illegal one raises
        again, again_mask = bs.encode_game(moves)
        assert torch.equal(ids, again) and torch.equal(mask, again_mask)


def test_every_example_fits_the_window_and_a_long_one_is_refused(data):
    longest = max(len(ids) for s in B.SPLITS for t in B.TASKS for ids, _ in data[s][t])
    assert longest <= B.BLOCK_SIZE == B.MODEL["block_size"]
    assert longest > B.BLOCK_SIZE - 16  # "just above the longest example"
    B.check_window(data, longest)
    with pytest.raises(ValueError, match="translation example has .* ids, more than the window"):
        B.check_window(data, 80)


def test_the_budget_is_equal_by_construction():
    steps = B.arm_steps(B.STEPS)
    assert steps["generalist"] == B.STEPS == sum(n for arm, n in steps.items() if arm != "generalist")
    assert len({n for arm, n in steps.items() if arm != "generalist"}) == 1  # a uniform mixture: equal shares
    jobs = B.jobs([0, 1], {arm: 0.01 for arm in B.ARMS}, 60)
    for seed in (0, 1):
        mine = {j["arm"]: j["steps"] for j in jobs if j["seed"] == seed}
        assert mine["generalist"] == 60 == sum(v for k, v in mine.items() if k != "generalist")
    assert B.BATCH_SIZE % len(B.TASKS) == 0
    for bad in (0, 5, 61):
        with pytest.raises(ValueError, match="multiple of 6"):
            B.arm_steps(bad)


def test_a_generalist_batch_holds_an_equal_share_of_every_task(data):
    draw = B.batches({t: data["train"][t] for t in B.TASKS}, B.BATCH_SIZE, torch.Generator().manual_seed(0))
    X, Y = draw()
    assert X.shape == Y.shape == (B.BATCH_SIZE, B.BLOCK_SIZE)
    share = B.BATCH_SIZE // len(B.TASKS)
    for k, task in enumerate(B.TASKS):
        rows = X[k * share:(k + 1) * share]
        tags = set(rows[rows >= bs.NUM_BYTES].tolist()) - {bs.SEP, bs.END}
        assert tags <= {bs.TAGS[task]}, (task, tags)  # windows of that task's stream only
    kept = Y[:, :-1] != lm.IGNORE
    assert torch.equal(Y[:, :-1][kept], X[:, 1:][kept])
    X, _ = B.batches({"caption": data["train"]["caption"]}, B.BATCH_SIZE, torch.Generator().manual_seed(0))()
    assert X.shape == (B.BATCH_SIZE, B.BLOCK_SIZE) and set(X[X >= 256].tolist()) <= {bs.TAGS["caption"], bs.SEP, bs.END}
    with pytest.raises(ValueError, match="split evenly"):
        B.batches({t: data["train"][t] for t in B.TASKS}, 20, torch.Generator())


def test_both_sides_cost_the_same_flops_per_step():
    per_step = B.step_flops()
    steps = B.arm_steps(B.STEPS)
    assert per_step > 0 and B.step_flops(B.BATCH_SIZE) == per_step
    generalist = steps["generalist"] * per_step
    assert generalist == sum(n * per_step for arm, n in steps.items() if arm != "generalist")
    n = sum(p.numel() for p in B.build_model(0).parameters())
    assert 0.5 < per_step / (6 * n * B.BATCH_SIZE * B.BLOCK_SIZE) < 2  # PyTorch's count near 6·N·D


def test_the_learning_rate_warms_up_then_decays():
    factors = [B.lr_factor(s, 50) for s in range(50)]
    assert factors[0] == pytest.approx(0.2) and factors[4] == 1.0 == max(factors)
    assert all(a >= b for a, b in zip(factors[4:], factors[5:])) and 0 < factors[-1] < 0.01


def test_the_digit_classifier_reaches_its_stated_accuracy_and_is_deterministic():
    splits = B._digit_splits()
    X, y = splits["test"]
    accuracy = (B.classify(X) == y).float().mean().item()
    assert accuracy >= CLASSIFIER_ACCURACY
    state = torch.random.get_rng_state()
    W, b = B.train_digit_classifier(*splits["train"])
    assert torch.equal(torch.random.get_rng_state(), state)  # it draws nothing from the global generator
    assert torch.equal(W, B._cache["classifier"][0]) and torch.equal(b, B._cache["classifier"][1])
    assert (B.classify(torch.zeros(5, 8, 8)) == B.classify(torch.zeros(5, 8, 8))[0]).all()


class Oracle(torch.nn.Module):
    """A language model that knows some examples: after a prefix of one, the next id gets all the probability."""

    window = None

    def __init__(self, examples, wrong=None):
        super().__init__()
        self.root = {}  # a trie of the examples' prefixes: id -> [next id, children]
        for ids, _ in examples:
            ids = ids.tolist()
            for t in range(len(ids) - 1):
                self._node(ids[:t + 1])[0] = ids[t + 1]
        if wrong is not None:  # (prefix, id): this prefix is followed by another id
            self._node(list(wrong[0]))[0] = wrong[1]

    def _node(self, prefix):
        children = self.root
        for i in prefix[:-1]:
            children = children.setdefault(i, [None, {}])[1]
        return children.setdefault(prefix[-1], [None, {}])

    def forward(self, idx, targets=None):
        logits = torch.full((*idx.shape, bs.VOCAB_SIZE), -1e4)
        for b, row in enumerate(idx.tolist()):
            children = self.root
            for t, i in enumerate(row):
                if i not in children:
                    break
                following, children = children[i]
                if following is not None:
                    logits[b, t, following] = 1e4
        return logits, None


def test_exact_match_is_what_greedy_decoding_writes(data):
    examples = data["test"]["translation"][:6]
    oracle = Oracle(examples)
    scores = B.score(oracle, examples, chunk=4)
    assert scores["exact"] == [True] * 6 and max(scores["bits"]) < 1e-6
    for ids, mask in examples:
        prompt = ids[~mask][None]
        written = lm.generate(oracle, prompt, int(mask.sum()), temperature=0)[0]
        assert torch.equal(written, ids)
    ids, mask = examples[2]
    wrong = Oracle(examples, wrong=(tuple(ids[:-1].tolist()), bs.SEP))  # everything right but the END
    scores = B.score(wrong, examples)
    assert scores["exact"] == [True, True, False, True, True, True] and scores["bits"][2] > 1000
    assert not torch.equal(lm.generate(wrong, ids[~mask][None], int(mask.sum()), temperature=0)[0], ids)


def test_move_accuracy_counts_the_moves_and_not_the_end(data):
    examples = data["test"]["game"][:5]
    moves = [int(m.sum()) - 1 for _, m in examples]  # every predicted id but END
    for example, n in zip(examples, moves):  # one oracle per record: records can share an opening
        scores = B.score(Oracle([example]), [example])
        assert scores["moves"] == scores["right_moves"] == [n]
    scores = B.score(B.build_model(0), examples)
    assert scores["moves"] == moves and all(0 <= r <= m for r, m in zip(scores["right_moves"], moves))


def test_drawings_are_judged_by_the_classifier_and_a_broken_one_counts_as_wrong(data, monkeypatch):
    monkeypatch.setattr(B, "DRAWINGS_PER_DIGIT", 2)
    images, labels = B.digits()
    firsts = [int((labels == d).nonzero()[0]) for d in range(10)]  # the first training image of each digit
    examples = [bs.encode_drawing(B.NAMES[labels[i]], images[i]) for i in firsts]
    right = (B.classify(images[firsts]) == labels[firsts]).float()        # (10,): each digit's image recognised
    drawn = B.evaluate(Oracle(examples), {"draw": examples}, torch.Generator().manual_seed(0))
    assert drawn["draw_valid"] == 1.0 and drawn["draw_accuracy"] == pytest.approx(right.mean().item())
    assert right.mean() >= 0.9
    ids, mask = examples[3]
    broken = Oracle(examples, wrong=(tuple(ids[~mask].tolist()), bs.END))  # "three": END before any pixel
    drawn = B.evaluate(broken, {"draw": examples}, torch.Generator().manual_seed(0))
    right[3] = 0
    assert drawn["draw_valid"] == pytest.approx(0.9) and drawn["draw_accuracy"] == pytest.approx(right.mean().item())


METRICS = {"text": ["text_bits"], "translation": ["translation_bits", "translation_exact_match"],
           "game": ["game_bits", "game_move_accuracy"], "image": ["image_bits"],
           "caption": ["caption_bits", "caption_accuracy"], "draw": ["draw_bits", "draw_valid", "draw_accuracy"]}
COMMON = ["arm", "seed", "lr", "steps", "on", "batch_size", "tokens", "parameters", "flops", "seconds",
          "cpu_seconds", "train_loss", "mean_bits", "eval_seconds"]


def test_a_tiny_generalist_run_returns_every_metric_finite_and_plain(data):
    result = B.run({"arm": "generalist", "seed": 0, "lr": 3e-3, "steps": 6, "on": "valid"})
    assert set(result) == set(COMMON) | {k for keys in METRICS.values() for k in keys}
    json.loads(json.dumps(result))  # plain numbers
    for key, value in result.items():
        if key not in ("arm", "on"):
            assert isinstance(value, (int, float)) and math.isfinite(value), key
    assert result["tokens"] == 6 * B.BATCH_SIZE * B.BLOCK_SIZE and result["flops"] == 6 * B.step_flops()
    assert result["parameters"] == sum(p.numel() for p in B.build_model(0).parameters())
    for task in B.TASKS:
        assert 0 < result[f"{task}_bits"] < math.log2(bs.VOCAB_SIZE) + 1
    for key in ("translation_exact_match", "game_move_accuracy", "caption_accuracy", "draw_valid", "draw_accuracy"):
        assert 0 <= result[key] <= 1


def test_a_specialist_is_scored_on_its_own_task_only_and_seeds_repeat(data):
    job = {"arm": "specialist:caption", "seed": 1, "lr": 3e-3, "steps": 3, "on": "valid"}
    result = B.run(job)
    assert set(result) == set(COMMON) | set(METRICS["caption"])
    again = B.run(job)
    assert all(again[k] == result[k] for k in result if "seconds" not in k)
    quick = B.run({**job, "arm": "specialist:draw", "drawings": False})
    assert set(quick) == set(COMMON) | {"draw_bits"}
    with pytest.raises(ValueError, match="unknown arm"):
        B.run({**job, "arm": "specialist:audio"})
    with pytest.raises(ValueError, match="'valid' or 'test'"):
        B.run({**job, "on": "train"})


def test_the_sweep_gives_every_arm_the_same_grid_and_a_table_sweeps_can_read(monkeypatch):
    best = B.LR_GRID[1]

    def fake(job):  # validation bits lowest at the grid's second value for every arm
        return {"arm": job["arm"], "lr": job["lr"], "seed": job["seed"], "steps": job["steps"], "seconds": 0.0,
                "mean_bits": 2 + (math.log10(job["lr"]) - math.log10(best)) ** 2}
    monkeypatch.setattr(B, "run", fake)
    table = sweeps.finish({"name": "bytes", **B.sweep(processes=1, total=60)})
    assert table["arm"] == "arm" and table["settings"] == ["lr"] and table["goal"] == "min"
    assert len(table["rows"]) == len(B.ARMS) * len(B.LR_GRID) * len(B.SWEEP_SEEDS) and len(B.LR_GRID) >= 3
    for arm in B.ARMS:
        rows = [r for r in table["rows"] if r["arm"] == arm]
        assert sorted(r["lr"] for r in rows) == sorted(B.LR_GRID)
        assert {r["steps"] for r in rows} == {60 if arm == "generalist" else 10}
    assert sweeps.chosen(table) == {arm: {"lr": best} for arm in B.ARMS}
    assert all(json.loads(json.dumps(row)) == row for row in table["rows"])


def fake_results(seeds=(0, 1)):
    steps = B.arm_steps(60)
    return [{"arm": arm, "seed": seed, "steps": steps[arm], "parameters": 1000,
             "tokens": steps[arm] * B.BATCH_SIZE * B.BLOCK_SIZE, "seconds": 1.0 + seed,
             **{f"{t}_bits": 2.0 + seed + (0.5 if arm == "generalist" else 0.0) for t in B.arm_tasks(arm)}}
            for seed in seeds for arm in reversed(B.ARMS)]


def test_paired_gives_each_side_by_seed_and_refuses_unmatched_seeds():
    results = fake_results()
    assert B.paired(results, "caption_bits") == ([2.5, 3.5], [2.0, 3.0])
    with pytest.raises(ValueError, match="names no task"):
        B.paired(results, "audio_bits")
    with pytest.raises(ValueError, match="must be the same"):
        B.paired([r for r in results if not (r["arm"] == "specialist:caption" and r["seed"] == 1)], "caption_bits")
    same_steps = {**results[0], "batch_size": B.BATCH_SIZE // 6}  # another side under the same arm's name
    with pytest.raises(ValueError, match="more than one run of a seed"):
        B.paired(results + [same_steps], f"{results[0]['arm'].split(':')[1]}_bits")
    with pytest.raises(ValueError, match="more than one run of a seed"):
        B.budget_arms(results + [same_steps])


def test_the_budget_table_shows_both_sides_equal():
    arms = B.budget_arms(fake_results())
    generalist, specialists = arms["generalist"], arms["6 specialists, summed"]
    assert generalist["steps"] == specialists["steps"] == 60 and generalist["tokens"] == specialists["tokens"]
    assert generalist["seconds"] == [1.0, 2.0] and specialists["seconds"] == [6.0, 12.0]
    from dltoolbox.compare import budget

    table = budget(arms).markdown
    assert table.count(f"{6 * 1000 * generalist['tokens']:.2e}") == 2  # the same FLOPs on both rows
    with pytest.raises(ValueError, match="every arm for every seed"):
        B.budget_arms([r for r in fake_results() if r["arm"] != "specialist:draw" or r["seed"] == 0])
