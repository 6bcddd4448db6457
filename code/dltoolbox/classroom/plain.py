"""Answers as plain data: what crosses from a student's kernel to the grader (JSON, never pickle).

:func:`encode` runs in the student's kernel and may be fooled there; that does not matter, because
:func:`decode` builds fresh objects of exact types (numbers, strings, lists, tuples, dicts, NumPy
arrays, PyTorch tensors) from the JSON alone, so nothing of the student's code reaches the grader.
"""
import json
import math
import time

MAX_BYTES = 64 << 20       # characters of one answer
MAX_ITEMS = 10_000_000     # numbers, strings and containers in one answer
MAX_KEYS = 10_000          # dict entries in one answer
MAX_DEPTH = 60
SMALL_INT = 1 << 31        # dict keys are strings, booleans or integers smaller than this in size
DTYPES = {"bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"}


class Unplain(TypeError):
    """A value that is not plain data (a model, a class ...)."""


def encode(value, depth=0):
    """A JSON-ready form of `value`; raises Unplain for anything else."""
    if depth > 50:
        raise Unplain("nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, str):
        return value
    if kind is int:
        return value if abs(value) < 2 ** 62 else {"int": str(value)}
    if kind is float:
        return value if math.isfinite(value) else {"float": repr(value)}
    if kind is list:
        return [encode(v, depth + 1) for v in value]
    if kind is tuple:
        return {"tuple": [encode(v, depth + 1) for v in value]}
    if kind is dict:
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    module = kind.__module__.split(".")[0]
    if module == "numpy":
        import numpy as np
        if isinstance(value, np.ndarray) and value.dtype.name in DTYPES:
            return {"ndarray": value.dtype.name, "shape": list(value.shape), "data": encode(value.ravel().tolist())}
        if isinstance(value, np.generic) and value.dtype.name in DTYPES:
            return {"numpy": value.dtype.name, "data": encode(value.item())}
    if module == "torch":
        import torch
        if isinstance(value, torch.Tensor) and str(value.dtype)[6:] in DTYPES:
            data = value.detach().cpu()
            data = data.float() if data.dtype == torch.bfloat16 else data
            return {"tensor": str(value.dtype)[6:], "shape": list(value.shape), "grad": bool(value.requires_grad),
                    "data": encode(data.reshape(-1).tolist())}
    raise Unplain(f"{kind.__name__} is not plain data")


def dumps(value):
    return json.dumps(encode(value), allow_nan=False)


class Unreadable(ValueError):
    """An answer that is not plain data, or too large, or too slow to read (the message is the judge's)."""


class _Pairs(list):
    """A JSON object as the list of its (key, value) pairs: parsing never hashes the student's keys."""


class _Budget:
    def __init__(self, seconds):
        self.deadline = time.monotonic() + (seconds if seconds else 60)
        self.items, self.keys = MAX_ITEMS, MAX_KEYS

    def spend(self, n=1):
        self.items -= n
        if self.items < 0:
            raise Unreadable(f"more than {MAX_ITEMS:,} values")
        if self.items % 4096 < n and time.monotonic() > self.deadline:
            raise Unreadable("reading it took longer than the time limit")


def tagged(node):
    """A JSON object of the plain format (a few known keys) as a dict, else None."""
    if type(node) is not _Pairs or not 1 <= len(node) <= 4:
        return None
    keys = [k for k, _ in node]
    return dict(node) if len(set(keys)) == len(keys) else None


def _number(value):
    if type(value) in (int, float, bool):
        return value
    tag = tagged(value)
    if tag is not None and set(tag) == {"float"} and tag["float"] in ("nan", "inf", "-inf"):
        return float(tag["float"])
    if tag is not None and set(tag) == {"int"} and type(tag["int"]) is str and len(tag["int"]) <= 400:
        text = tag["int"]
        if text.lstrip("-").isdigit() and text.isascii():
            return int(text)
    raise Unreadable("not a number")


def _key(value):
    if type(value) is str or type(value) is bool or value is None:
        return value
    if type(value) is int and abs(value) < SMALL_INT:
        return value
    raise Unreadable("a dict key that is not a string or a small integer")


def _decode(node, handle, budget, depth):
    if depth > MAX_DEPTH:
        raise Unreadable("nested too deeply")
    budget.spend()
    kind = type(node)
    if node is None or kind in (bool, str, int, float):
        return node
    if kind is list:
        return [_decode(v, handle, budget, depth + 1) for v in node]
    tag = tagged(node)
    if tag is None:
        raise Unreadable("not plain data")
    keys = set(tag)
    if keys in ({"int"}, {"float"}):
        return _number(node)
    if keys == {"tuple"} and type(tag["tuple"]) is list:
        return tuple(_decode(v, handle, budget, depth + 1) for v in tag["tuple"])
    if keys == {"dict"} and type(tag["dict"]) is list:
        out = {}
        for pair in tag["dict"]:
            budget.keys -= 1
            if budget.keys < 0:
                raise Unreadable(f"more than {MAX_KEYS:,} dict entries")
            if type(pair) is not list or len(pair) != 2:
                raise Unreadable("not plain data")
            out[_key(_decode(pair[0], None, budget, depth + 1))] = _decode(pair[1], handle, budget, depth + 1)
        return out
    if keys == {"handle"} and handle is not None and type(tag["handle"]) is int and 0 <= tag["handle"] < SMALL_INT:
        return handle(tag["handle"])
    if keys in ({"ndarray", "shape", "data"}, {"tensor", "shape", "grad", "data"}):
        dtype, shape, flat = tag.get("ndarray") or tag.get("tensor"), tag["shape"], tag["data"]
        if (dtype not in DTYPES or type(shape) is not list or len(shape) > 16
                or not all(type(s) is int and 0 <= s < SMALL_INT for s in shape)):
            raise Unreadable("not plain data")
        if type(flat) is not list or len(flat) != math.prod(shape):
            raise Unreadable("the data does not fit the shape")
        budget.spend(len(flat))
        flat = [_number(v) for v in flat]
        if "ndarray" in tag:
            import numpy as np
            return np.array(flat, dtype=np.dtype(dtype)).reshape(shape)
        import torch
        tensor = torch.tensor(flat, dtype=getattr(torch, dtype)).reshape(shape)
        return tensor.requires_grad_(True) if tag["grad"] is True and tensor.is_floating_point() else tensor
    if keys == {"numpy", "data"} and tag["numpy"] in DTYPES:
        import numpy as np
        return np.dtype(tag["numpy"]).type(_number(tag["data"]))
    raise Unreadable("not plain data")


def decode(data, handle=None, seconds=None):
    """Fresh plain objects from parsed answer data (see :func:`answer_of`); Unreadable when it is not."""
    try:
        return _decode(data, handle, _Budget(seconds), 0)
    except Unreadable:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError):
        raise Unreadable("not plain data") from None


def parse(text):
    """The JSON of an answer file, JSON objects kept as lists of pairs (nothing of the student's is hashed)."""
    if len(text) > MAX_BYTES:
        raise Unreadable(f"larger than {MAX_BYTES >> 20} MB")
    try:
        return json.loads(text, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        raise Unreadable("not JSON") from None


def loads(text, handle=None, seconds=None):
    """`decode(parse(text))`: the plain objects an answer file's text holds."""
    return decode(parse(text), handle, seconds)
