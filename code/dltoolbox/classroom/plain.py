"""Answers as plain data: what crosses from a student's kernel to the grader (JSON, never pickle).

:func:`encode` runs in the student's kernel and may be fooled there; that does not matter, because
:func:`decode` builds fresh objects of exact types (numbers, strings, lists, tuples, dicts, NumPy
arrays, PyTorch tensors) from the JSON alone, so nothing of the student's code reaches the grader.
"""
import json
import math

MAX_BYTES = 64 << 20
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


def _number(value):
    if type(value) in (int, float, bool):
        return value
    if type(value) is dict and set(value) == {"float"} and value["float"] in ("nan", "inf", "-inf"):
        return float(value["float"])
    if type(value) is dict and set(value) == {"int"} and type(value["int"]) is str:
        return int(value["int"][:400])
    raise ValueError("not a number")


def decode(data, handle=None, depth=0):
    """Fresh plain objects from JSON data; `handle(key)` makes the stand-in for a value kept in the kernel."""
    if depth > 60:
        raise ValueError("nested too deeply")
    kind = type(data)
    if data is None or kind in (bool, str, int, float):
        return data
    if kind is list:
        return [decode(v, handle, depth + 1) for v in data]
    if kind is not dict:
        raise ValueError("not plain data")
    keys = set(data)
    if keys in ({"int"}, {"float"}):
        return _number(data)
    if keys == {"tuple"} and type(data["tuple"]) is list:
        return tuple(decode(v, handle, depth + 1) for v in data["tuple"])
    if keys == {"dict"} and type(data["dict"]) is list:
        out = {}
        for pair in data["dict"]:
            if type(pair) is not list or len(pair) != 2:
                raise ValueError("not plain data")
            key = decode(pair[0], None, depth + 1)
            out[key if not isinstance(key, list) else tuple(key)] = decode(pair[1], handle, depth + 1)
        return out
    if keys == {"handle"} and handle is not None and type(data["handle"]) is int:
        return handle(data["handle"])
    if keys in ({"ndarray", "shape", "data"}, {"tensor", "shape", "grad", "data"}):
        dtype, shape, flat = data.get("ndarray") or data.get("tensor"), data["shape"], data["data"]
        if dtype not in DTYPES or type(shape) is not list or not all(type(s) is int and s >= 0 for s in shape):
            raise ValueError("not plain data")
        if type(flat) is not list or len(flat) != math.prod(shape):
            raise ValueError("the data does not fit the shape")
        flat = [_number(v) for v in flat]
        if "ndarray" in data:
            import numpy as np
            return np.array(flat, dtype=np.dtype(dtype)).reshape(shape)
        import torch
        tensor = torch.tensor(flat, dtype=getattr(torch, dtype)).reshape(shape)
        return tensor.requires_grad_(True) if data["grad"] is True and tensor.is_floating_point() else tensor
    if keys == {"numpy", "data"} and data["numpy"] in DTYPES:
        import numpy as np
        return np.dtype(data["numpy"]).type(_number(data["data"]))
    raise ValueError("not plain data")


def loads(text, handle=None):
    if len(text) > MAX_BYTES:
        raise ValueError(f"the answer is larger than {MAX_BYTES >> 20} MB")
    return decode(json.loads(text), handle)
