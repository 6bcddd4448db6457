"""A generated Omniglot-like alphabet: hundreds of glyph classes drawn from random strokes, plus 8×8 digits.

Each class is a handful of pen strokes (quadratic curves between random points); each example of a
class is the same strokes drawn again with a shaky hand (jittered points, a small rotation, scale and
shift, a different pen width). Everything is generated from a seed, so there is nothing to download.
"""
import numpy as np
import torch
import torch.nn.functional as F


def _class_strokes(rng, num_strokes):
    """Control points (num_strokes, 3, 2) of one class: start, bend and end of each stroke in [0, 1]²."""
    start = rng.uniform(0.15, 0.85, size=(num_strokes, 2))
    end = np.clip(start + rng.normal(0, 0.35, size=(num_strokes, 2)), 0.1, 0.9)
    bend = (start + end) / 2 + rng.normal(0, 0.15, size=(num_strokes, 2))
    return np.stack([start, bend, end], axis=1)


def _render(points, width, size):
    """Draw polylines `points` (B, P, 2) with pen widths `width` (B,) as (B, size, size) images in [0, 1]."""
    grid = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    pixels = np.stack([xx.ravel(), yy.ravel()], axis=-1)                    # (S*S, 2)
    d2 = ((pixels[None, :, None, :] - points[:, None, :, :]) ** 2).sum(-1)  # (B, S*S, P)
    ink = np.exp(-d2.min(-1) / (width[:, None] ** 2))                       # (B, S*S)
    return ink.reshape(-1, size, size)


def make_glyphs(num_classes=400, per_class=20, size=16, seed=0):
    """Images (num_classes*per_class, 1, size, size) float32 in [0, 1] and labels (int64), class-major."""
    if num_classes < 2 or per_class < 1 or size < 8:
        raise ValueError(f"need num_classes >= 2, per_class >= 1, size >= 8; got {num_classes}, {per_class}, {size}")
    rng = np.random.RandomState(seed)
    t = np.linspace(0, 1, 16)[:, None]                                      # (16, 1) points per stroke
    images = []
    for _ in range(num_classes):
        strokes = _class_strokes(rng, rng.randint(2, 5))                    # (S, 3, 2)
        ctrl = strokes[None] + rng.normal(0, 0.05, size=(per_class,) + strokes.shape)
        a, b, c = ctrl[:, :, 0:1], ctrl[:, :, 1:2], ctrl[:, :, 2:3]        # (n, S, 1, 2)
        curve = ((1 - t) ** 2 * a + 2 * (1 - t) * t * b + t ** 2 * c).reshape(per_class, -1, 2)
        angle = rng.uniform(-0.3, 0.3, size=per_class)
        scale = rng.uniform(0.8, 1.2, size=per_class)
        rot = np.stack([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], -1).reshape(-1, 2, 2)
        shift = rng.uniform(-0.12, 0.12, size=(per_class, 1, 2))
        curve = (curve - 0.5) @ (rot * scale[:, None, None]) + 0.5 + shift
        images.append(_render(curve, rng.uniform(0.05, 0.075, size=per_class), size))
    X = torch.from_numpy(np.concatenate(images)).float().unsqueeze(1)
    y = torch.arange(num_classes).repeat_interleave(per_class)
    return X, y


def load_digits_images(size=16):
    """scikit-learn's bundled 8×8 digits (1,797 images), upsampled to (N, 1, size, size) in [0, 1], and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if size != 8:
        X = F.interpolate(X, size=(size, size), mode="bilinear", align_corners=False)
    return X, torch.tensor(digits.target, dtype=torch.int64)
