"""Text from students made safe to show: shortened, without colour codes, control characters escaped."""
import re


def short(text, limit=400):
    """`text` without colour codes, cut to `limit` characters."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(text)).strip()
    return text if len(text) <= limit else text[:limit] + " …"


def printable(text):
    """`text` with control characters escaped, safe to print on the instructor's terminal."""
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]",
                  lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}", str(text))
