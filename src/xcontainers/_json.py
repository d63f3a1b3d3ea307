"""JSON for the runtime's hot path, on the C accelerator module `_json`.

The standard `json` package imports `re` (and with it `enum`, `functools`,
`collections`): about 8 ms per runtime command here, a quarter of what runc
takes for a whole `run`.  The C scanner and string encoder that `json`
itself uses need none of that; this module wires them up.  Output and
errors match `json.loads`/`json.dumps` (compact separators excepted: the
state file and the sync messages need no spaces).
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["loads", "dumps", "JSONDecodeError"]


class JSONDecodeError(ValueError):
    """Malformed JSON (a ValueError, like json.JSONDecodeError)."""


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = None
    memo: dict[str, str] = {}

    def __init__(self) -> None:
        self.memo = {}
        self.parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                               "NaN": float("nan")}.__getitem__


_WS = " \t\n\r"


def loads(data: str | bytes) -> Any:
    """Parse one JSON document."""
    s = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    if s.startswith("\ufeff"):
        raise JSONDecodeError("unexpected UTF-8 BOM")
    ctx = _Context()
    scan = _json.make_scanner(ctx)
    i = 0
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    try:
        obj, end = scan(s, i)
    except StopIteration as e:
        raise JSONDecodeError(f"expecting a value at char {e.value}") from None
    except ValueError as e:  # the C scanner raises the stdlib's JSONDecodeError lazily
        raise JSONDecodeError(str(e)) from None
    while end < n and s[end] in _WS:
        end += 1
    if end != n:
        raise JSONDecodeError(f"extra data at char {end}")
    return obj


def dumps(obj: Any) -> str:
    """Serialize *obj* compactly (ASCII, like json.dumps(separators=(',', ':')))."""
    out: list[str] = []
    _encode(obj, out)
    return "".join(out)


def _encode(o: Any, out: list[str]) -> None:
    if isinstance(o, str):
        out.append(_json.encode_basestring_ascii(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        if o != o or o in (float("inf"), float("-inf")):
            raise ValueError("out of range float values are not JSON compliant")
        out.append(float.__repr__(o))
    elif isinstance(o, dict):
        out.append("{")
        first = True
        for k, v in o.items():
            if not isinstance(k, str):
                raise TypeError(f"keys must be str, not {type(k).__name__}")
            if not first:
                out.append(",")
            first = False
            out.append(_json.encode_basestring_ascii(k))
            out.append(":")
            _encode(v, out)
        out.append("}")
    elif isinstance(o, (list, tuple)):
        out.append("[")
        for i, v in enumerate(o):
            if i:
                out.append(",")
            _encode(v, out)
        out.append("]")
    else:
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")
