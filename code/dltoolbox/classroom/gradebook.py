"""The gradebook: grades.csv and grades.json, each written to a new file and renamed into place."""
import csv
import io
import json
from pathlib import Path

from .files import shown, write_under

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
    write_under(root, Path(path).relative_to(root).parts, data)


def _text(value):
    """A gradebook cell: text is made valid UTF-8 (a byte that is not shows as \\xNN), numbers stay."""
    return shown(value) if isinstance(value, str) else value


def write_gradebook(rows, out):
    """grades.csv (one row per student, notebook and exercise) and grades.json (rows and totals), atomically.
    Both are always attempted: a name or message that is not valid text is written escaped."""
    rows = [{k: _text(row.get(k, "")) for k in FIELDS} for row in rows]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows([{k: spreadsheet_safe(v) for k, v in row.items()} for row in rows])
    failed = None
    try:
        write_atomic(Path(out) / "grades.csv", text.getvalue().encode("utf-8"), out)
    except OSError as error:
        failed = error
    data = json.dumps({"totals": totals(rows), "grades": rows}, indent=1, ensure_ascii=False) + "\n"
    write_atomic(Path(out) / "grades.json", data.encode("utf-8"), out)
    if failed is not None:
        raise failed
