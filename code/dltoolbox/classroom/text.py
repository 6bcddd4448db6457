"""Text from students made safe to show: shortened, without colour codes, control characters escaped."""
import re


def short(text, limit=400):
    """`text` without colour codes, cut to `limit` characters."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(text)).strip()
    return text if len(text) <= limit else text[:limit] + " …"


def printable(text):
    """`text` with control characters (and bytes of names that are not UTF-8) escaped, safe to print."""
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]",
                  _escape, str(text))


def _escape(match):
    code = ord(match[0])
    if 0xdc80 <= code <= 0xdcff:  # a byte of a file name that is not UTF-8
        return f"\\x{code - 0xdc00:02x}"
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"
