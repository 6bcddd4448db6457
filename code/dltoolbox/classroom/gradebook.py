"""The gradebook: grades.csv and grades.json, each written to a new file and renamed into place."""
import csv
import io
import json
import os
import tempfile
from pathlib import Path

FIELDS = ["student", "notebook", "exercise", "points", "max_points", "feedback"]


def totals(rows):
    """Points and maximum per student."""
    result = {}
    for row in rows:
        entry = result.setdefault(row["student"], {"points": 0.0, "max_points": 0.0})
        entry["points"] += row["points"]
        entry["max_points"] += row["max_points"]
    return result


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet shows as text: one starting with = + - @ or a control character gets a '."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r", "\n") else value


def write_atomic(path, data, root):
    """Write `path` under `root` by renaming a new file over it: never through a symbolic link."""
    path, root = Path(path), Path(root)
    root.mkdir(parents=True, exist_ok=True)
    folder = root
    for part in path.parent.relative_to(root).parts:
        folder = folder / part
        if folder.is_symlink():
            raise FileExistsError(f"{folder} is a symbolic link: refusing to write through it")
        folder.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_gradebook(rows, out):
    """grades.csv (one row per student, notebook and exercise) and grades.json (rows and totals), atomically."""
    rows = [{k: row[k] for k in FIELDS} for row in rows]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows([{k: spreadsheet_safe(v) for k, v in row.items()} for row in rows])
    write_atomic(Path(out) / "grades.csv", text.getvalue().encode("utf-8"), out)
    data = json.dumps({"totals": totals(rows), "grades": rows}, indent=1, ensure_ascii=False) + "\n"
    write_atomic(Path(out) / "grades.json", data.encode("utf-8"), out)
