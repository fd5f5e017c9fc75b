"""Reading a marshalled Python function without running it.

Keras 1 and 2 saved a ``Lambda`` layer's function as ``marshal.dumps(func.__code__)``
from whatever Python trained the model (often 3.5). Loading it back means
``marshal.loads`` and then running the code: ``marshal.loads`` builds code objects of
the *running* interpreter from another version's bytes (it fails, or worse, builds a
code object the interpreter runs wrongly), and running the function runs whatever it
holds. Neither happens here.

:func:`read_code` is a small reader of the marshal format that only builds plain
values (numbers, strings, tuples) and :class:`CodeInfo` records; it knows the code
object layouts of Python 2.7, 3.0-3.7, 3.8-3.10 and 3.11+ and picks the one the bytes
parse as. What the code computes is :mod:`models.legacy.affine`'s question.
"""

from __future__ import annotations

import binascii
import contextlib
import struct
from dataclasses import dataclass

#: A marshal type byte with this bit set adds the object to the reference table.
_FLAG_REF = 0x80
#: Nesting deeper than this is not a lambda; refuse instead of recursing.
_MAX_DEPTH = 64


class BytecodeError(ValueError):
    """Bytes that are not a marshalled code object, or code that is not an affine map."""


@dataclass(frozen=True)
class CodeInfo:
    """What a marshalled code object holds, as plain values (nothing executable)."""

    layout: str  # "2.7", "3.0-3.7", "3.8-3.10" or "3.11+"
    argcount: int
    code: bytes
    consts: tuple
    names: tuple[str, ...]  # globals and attributes the code looks up
    varnames: tuple[str, ...]  # arguments first, then locals
    name: str
    filename: str


# ----------------------------------------------------------------------------- marshal


def _text(value) -> str:
    # Python 2 keeps identifiers as byte strings; Latin-1 maps every byte to one char.
    return value.decode("latin-1") if isinstance(value, bytes) else value


class _Reader:
    """Reads one marshalled object, building only plain values and :class:`CodeInfo`."""

    def __init__(self, data: bytes, layout: str):
        self.data = data
        self.pos = 0
        self.layout = layout
        self.refs: list = []  # FLAG_REF table (Python 3.4+)
        self.interned: list = []  # Python 2's interned strings ('t', referred to by 'R')

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BytecodeError(
                f"truncated: {n} bytes wanted at offset {self.pos} of {len(self.data)}"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def _int32(self) -> int:
        return struct.unpack("<i", self._take(4))[0]

    def _size(self) -> int:
        n = self._int32()
        if n < 0 or n > len(self.data) - self.pos:
            raise BytecodeError(f"impossible length {n} at offset {self.pos - 4}")
        return n

    def read(self, depth: int = 0):
        if depth > _MAX_DEPTH:
            raise BytecodeError("objects nested too deeply")
        byte = self._take(1)[0]
        kind, flag = chr(byte & ~_FLAG_REF), byte & _FLAG_REF
        if kind == "r":
            index = self._int32()
            if not 0 <= index < len(self.refs) or self.refs[index] is _PENDING:
                raise BytecodeError(f"bad reference {index} at offset {self.pos - 4}")
            return self.refs[index]
        slot = None
        if flag:  # reserved before the contents are read, as CPython does
            slot = len(self.refs)
            self.refs.append(_PENDING)
        value = self._value(kind, depth)
        if slot is not None:
            self.refs[slot] = value
        return value

    def _value(self, kind: str, depth: int):
        simple = {"N": None, "F": False, "T": True, ".": Ellipsis, "S": StopIteration}
        if kind in simple:
            return simple[kind]
        if kind == "i":
            return self._int32()
        if kind == "I":  # Python 2's 64-bit int
            return struct.unpack("<q", self._take(8))[0]
        if kind == "l":
            n = self._int32()
            digits = struct.unpack(f"<{abs(n)}H", self._take(2 * abs(n)))
            value = sum(d << (15 * i) for i, d in enumerate(digits))
            return -value if n < 0 else value
        if kind == "g":
            return struct.unpack("<d", self._take(8))[0]
        if kind == "f":  # text float (marshal version 0/1)
            return float(self._take(self._take(1)[0]).decode("ascii"))
        if kind == "y":
            real, imag = struct.unpack("<dd", self._take(16))
            return complex(real, imag)
        if kind == "x":
            real = float(self._take(self._take(1)[0]).decode("ascii"))
            return complex(real, float(self._take(self._take(1)[0]).decode("ascii")))
        if kind == "s":
            return self._take(self._size())
        if kind == "t":  # Python 2: interned str; Python 3: interned unicode
            raw = self._take(self._size())
            if self.layout == "2.7":
                self.interned.append(raw)
                return raw
            return raw.decode("utf-8", "surrogatepass")
        if kind == "R":  # Python 2: reference to an interned str
            index = self._int32()
            if not 0 <= index < len(self.interned):
                raise BytecodeError(f"bad string reference {index}")
            return self.interned[index]
        if kind == "u":
            return self._take(self._size()).decode("utf-8", "surrogatepass")
        if kind in "aA":
            return self._take(self._size()).decode("ascii")
        if kind in "zZ":
            return self._take(self._take(1)[0]).decode("ascii")
        if kind in "([<>":
            items = [self.read(depth + 1) for _ in range(self._size())]
            return tuple(items) if kind in "(<>" else items
        if kind == ")":
            return tuple(self.read(depth + 1) for _ in range(self._take(1)[0]))
        if kind == "{":
            out = {}
            while self.data[self.pos : self.pos + 1] != b"0":
                key = self.read(depth + 1)
                out[key if isinstance(key, int | float | str | bytes) else repr(key)] = self.read(
                    depth + 1
                )
            self.pos += 1
            return out
        if kind == "c":
            return self._code(depth)
        raise BytecodeError(f"unknown marshal type {kind!r} at offset {self.pos - 1}")

    def _code(self, depth: int) -> CodeInfo:
        ints = {"2.7": 4, "3.0-3.7": 5, "3.8-3.10": 6, "3.11+": 5}[self.layout]
        header = [self._int32() for _ in range(ints)]
        argcount = header[0]
        code = self.read(depth + 1)
        consts = self.read(depth + 1)
        names = self.read(depth + 1)
        if self.layout == "3.11+":
            varnames = self.read(depth + 1)  # co_localsplusnames
            kinds = self.read(depth + 1)  # co_localspluskinds
            if not isinstance(kinds, bytes) or len(kinds) != len(varnames or ()):
                raise BytecodeError("not a Python 3.11+ code object")
            filename, name = self.read(depth + 1), self.read(depth + 1)
            self.read(depth + 1)  # qualname
            self._int32()  # firstlineno
            self.read(depth + 1)  # linetable
            self.read(depth + 1)  # exceptiontable
        else:
            varnames = self.read(depth + 1)
            freevars, cellvars = self.read(depth + 1), self.read(depth + 1)
            if not (isinstance(freevars, tuple) and isinstance(cellvars, tuple)):
                raise BytecodeError(f"not a Python {self.layout} code object")
            filename, name = self.read(depth + 1), self.read(depth + 1)
            self._int32()  # firstlineno
            self.read(depth + 1)  # lnotab / linetable
        if not (
            0 <= argcount < 256
            and isinstance(code, bytes)
            and isinstance(consts, tuple)
            and isinstance(names, tuple)
            and isinstance(varnames, tuple)
            and all(isinstance(n, str | bytes) for n in names + varnames)
            and isinstance(filename, str | bytes)
            and isinstance(name, str | bytes)
        ):
            raise BytecodeError(f"fields do not fit a Python {self.layout} code object")
        return CodeInfo(
            layout=self.layout,
            argcount=argcount,
            code=code,
            consts=consts,
            names=tuple(_text(n) for n in names),
            varnames=tuple(_text(n) for n in varnames),
            name=_text(name),
            filename=_text(filename),
        )


_PENDING = object()
LAYOUTS = ("3.0-3.7", "3.8-3.10", "3.11+", "2.7")


def read_code(data: bytes) -> CodeInfo:
    """The code object marshalled in ``data``, read without ``marshal.loads``.

    Tries each known code-object layout and keeps the one that reads all of ``data``
    into a well-formed code object.
    """
    if not data or data[0] & ~_FLAG_REF != ord("c"):
        raise BytecodeError(f"expected a marshalled code object (type byte 'c'), got {data[:1]!r}")
    problems = []
    for layout in LAYOUTS:
        reader = _Reader(data, layout)
        try:
            info = reader.read()
        except (BytecodeError, struct.error, UnicodeDecodeError, ValueError) as exc:
            problems.append(f"{layout}: {exc}")
            continue
        if reader.pos == len(data):
            return info
        problems.append(f"{layout}: {len(data) - reader.pos} bytes left over")
    raise BytecodeError(
        "not a code object of any known Python layout (" + "; ".join(problems) + ")"
    )


def keras_function_bytes(function) -> bytes:
    """The marshalled code a Keras ``Lambda`` config holds in its ``function`` field.

    Keras 1 (and 2 before 2.1.2) stored ``marshal.dumps(code).decode("raw_unicode_escape")``;
    later Keras 2 stored it base64-encoded (with newlines); both usually as the first item
    of a ``[code, defaults, closure]`` list, Keras 3 inside ``{"config": {"code": ...}}``.
    """
    if isinstance(function, dict):
        function = (function.get("config") or {}).get("code")
    if isinstance(function, list | tuple):
        function = function[0] if function else None
    if not isinstance(function, str):
        raise BytecodeError(
            f"expected the function's marshalled code as a string, got {type(function).__name__}"
        )
    candidates = []
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(binascii.a2b_base64("".join(function.split()), strict_mode=True))
    with contextlib.suppress(UnicodeEncodeError):
        candidates.append(function.encode("raw_unicode_escape"))
    for raw in candidates:
        if raw[:1] and raw[0] & ~_FLAG_REF == ord("c"):
            return raw
    raise BytecodeError("the function field is neither base64 nor raw marshal text")


def constants(info: CodeInfo) -> tuple:
    """The code's constants without ``None`` (the docstring slot) and nested code objects."""
    return tuple(c for c in info.consts if c is not None and not isinstance(c, CodeInfo))
