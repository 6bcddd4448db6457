import pytest
import torch

from dltoolbox.glyphs import load_digits_images, make_glyphs


def test_glyphs_shape_range_and_labels():
    X, y = make_glyphs(num_classes=6, per_class=4, size=16, seed=0)
    assert X.shape == (24, 1, 16, 16) and X.dtype == torch.float32
    assert 0.0 <= float(X.min()) and float(X.max()) <= 1.0
    assert y.tolist() == [c for c in range(6) for _ in range(4)]


def test_glyphs_are_deterministic_and_depend_on_the_seed():
    a, _ = make_glyphs(num_classes=3, per_class=2, seed=1)
    b, _ = make_glyphs(num_classes=3, per_class=2, seed=1)
    c, _ = make_glyphs(num_classes=3, per_class=2, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_examples_of_a_class_are_closer_than_examples_of_different_classes():
    X, y = make_glyphs(num_classes=40, per_class=10, seed=0)
    flat = X.flatten(1)
    means = torch.stack([flat[y == c].mean(0) for c in range(40)])
    nearest = torch.cdist(flat, means).argmin(1)
    assert (nearest == y).float().mean() > 0.5  # far above chance (1/40): classes are real


def test_digits_ship_with_scikit_learn():
    X, y = load_digits_images(size=16)
    assert X.shape == (1797, 1, 16, 16) and set(y.tolist()) == set(range(10))
    assert 0.0 <= float(X.min()) and float(X.max()) <= 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="num_classes"):
        make_glyphs(num_classes=1)
