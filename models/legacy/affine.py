"""Whether a marshalled ``Lambda`` computes ``a * x + b`` of its input, read, not run.

:func:`affine_map` decodes the instructions of a :class:`~models.legacy.codeobject.CodeInfo`
with the few opcodes of each Python version that arithmetic needs and follows them on
symbols: the function is accepted only if it is ``a * x + b`` of its first argument
with numeric constants (``x / 255 - 0.5``, ``x / 127.5 - 1``, ``x / 255``,
``(x - 128) / 128`` and any other such arrangement). Everything else (a call, an
attribute, a global name, a slice, a second argument) is refused with the constants and
names found, so the caller can say what the function seems to do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from models.legacy.codeobject import BytecodeError, CodeInfo


@dataclass(frozen=True)
class _Dialect:
    """The opcodes of one range of Python versions that arithmetic on constants needs."""

    label: str
    wordcode: bool  # 2 bytes per instruction (3.6+); else 1, or 3 with an argument
    opnames: dict[int, str]
    have_argument: int = 90
    skip: frozenset[str] = field(default=frozenset({"NOP", "RESUME", "CACHE"}))


_CLASSIC = {
    124: "LOAD_FAST",
    100: "LOAD_CONST",
    20: "BINARY_MULTIPLY",
    23: "BINARY_ADD",
    24: "BINARY_SUBTRACT",
    27: "BINARY_TRUE_DIVIDE",
    83: "RETURN_VALUE",
    9: "NOP",
}
#: Python 2's ``/`` without ``from __future__ import division``; on tensors it divides.
_PY2 = {**_CLASSIC, 21: "BINARY_DIVIDE"}
_PY311 = {124: "LOAD_FAST", 100: "LOAD_CONST", 122: "BINARY_OP", 83: "RETURN_VALUE"}
_PY311.update({9: "NOP", 151: "RESUME", 0: "CACHE"})
_PY313 = {85: "LOAD_FAST", 83: "LOAD_CONST", 45: "BINARY_OP", 36: "RETURN_VALUE"}
_PY313.update({30: "NOP", 149: "RESUME", 0: "CACHE"})

DIALECTS = {
    "2.7": (_Dialect("Python 2.7", False, _PY2),),
    "3.0-3.7": (
        _Dialect("Python 3.0-3.5", False, _CLASSIC),
        _Dialect("Python 3.6-3.7", True, _CLASSIC),
    ),
    "3.8-3.10": (_Dialect("Python 3.8-3.10", True, _CLASSIC),),
    "3.11+": (
        _Dialect("Python 3.11-3.12", True, _PY311),
        _Dialect("Python 3.13", True, _PY313),
    ),
}
#: BINARY_OP's argument (3.11+): the operator.
_NB_OPS = {0: "+", 5: "*", 10: "-", 11: "/"}
_CLASSIC_OPS = {
    "BINARY_ADD": "+",
    "BINARY_SUBTRACT": "-",
    "BINARY_MULTIPLY": "*",
    "BINARY_TRUE_DIVIDE": "/",
    "BINARY_DIVIDE": "py2/",
}


def _instructions(info: CodeInfo, dialect: _Dialect) -> list[tuple[int, str, int]] | None:
    """(offset, opname, arg) for every instruction, or None if one is not in ``dialect``."""
    code, out, i = info.code, [], 0
    while i < len(code):
        op = code[i]
        name = dialect.opnames.get(op)
        if name is None:
            return None
        if dialect.wordcode:
            if i + 1 >= len(code):
                return None
            arg, size = code[i + 1], 2
        elif op >= dialect.have_argument:
            if i + 2 >= len(code):
                return None
            arg, size = code[i + 1] | code[i + 2] << 8, 3
        else:
            arg, size = 0, 1
        if name not in dialect.skip:
            out.append((i, name, arg))
        i += size
    return out


@dataclass(frozen=True)
class AffineMap:
    """``scale * x + offset``, and the disassembly it was read from."""

    scale: float
    offset: float
    dialect: str
    listing: str


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _apply(op: str, left, right):
    """``left op right`` where a number is a constant and a pair (a, b) stands for a*x + b."""
    lx, rx = isinstance(left, tuple), isinstance(right, tuple)
    if not lx and not rx:
        if op in ("/", "py2/") and right == 0:
            raise BytecodeError("divides by zero")
        if op == "py2/" and isinstance(left, int) and isinstance(right, int):
            return left // right  # Python 2's classic division of two ints
        return {"+": left + right, "-": left - right, "*": left * right}.get(op, left / right)
    op = "/" if op == "py2/" else op  # the input is a float tensor: true division
    if op in "+-":
        la, lb = left if lx else (0.0, left)
        ra, rb = right if rx else (0.0, right)
        sign = 1.0 if op == "+" else -1.0
        return (la + sign * ra, lb + sign * rb)
    if op == "*" and lx != rx:
        (a, b), c = (left, right) if lx else (right, left)
        return (a * c, b * c)
    if op == "/" and lx and not rx and right != 0:
        return (left[0] / right, left[1] / right)
    raise BytecodeError(f"'{op}' of its input with {'its input' if lx and rx else 'a constant'}")


def _follow(info: CodeInfo, instructions) -> tuple[float, float]:
    stack: list = []
    for _, name, arg in instructions:
        if name == "LOAD_FAST":
            if arg != 0 or info.argcount < 1:
                raise BytecodeError(f"reads local variable {arg}, not only its first argument")
            stack.append((1.0, 0.0))
        elif name == "LOAD_CONST":
            value = info.consts[arg] if arg < len(info.consts) else None
            if not _number(value):
                raise BytecodeError(f"uses the constant {value!r}, not a number")
            stack.append(value)
        elif name in ("BINARY_OP", *_CLASSIC_OPS):
            op = _NB_OPS.get(arg) if name == "BINARY_OP" else _CLASSIC_OPS[name]
            if op is None or len(stack) < 2:
                raise BytecodeError(f"{name} {arg} is not + - * / of two values")
            right, left = stack.pop(), stack.pop()
            stack.append(_apply(op, left, right))
        elif name == "RETURN_VALUE":
            if len(stack) != 1 or not isinstance(stack[0], tuple):
                raise BytecodeError("does not return a function of its input")
            scale, offset = (float(v) for v in stack[0])
            if scale == 0 or not (math.isfinite(scale) and math.isfinite(offset)):
                raise BytecodeError(f"gives {scale} * x + {offset}, not a usable scaling")
            return scale, offset
    raise BytecodeError("never returns")


def affine_map(info: CodeInfo) -> AffineMap:
    """``(scale, offset)`` if the code computes ``scale * x + offset`` of its first argument.

    Raises :class:`BytecodeError` saying why not. Nothing in ``info`` is executed: the
    instructions are decoded with each candidate version's opcode numbers and followed
    on symbols; a version under which some opcode is not arithmetic is not a match.
    """
    reasons = []
    for dialect in DIALECTS[info.layout]:
        instructions = _instructions(info, dialect)
        if instructions is None:
            reasons.append(f"{dialect.label}: uses operations other than + - * / on numbers")
            continue
        try:
            scale, offset = _follow(info, instructions)
        except (BytecodeError, ZeroDivisionError, OverflowError) as exc:
            reasons.append(f"{dialect.label}: {exc}")
            continue
        listing = "\n".join(
            f"{offset:4d} {name:<20} {_argrepr(info, name, arg)}"
            for offset, name, arg in instructions
        )
        return AffineMap(scale, offset, dialect.label, listing)
    raise BytecodeError("; ".join(reasons))


def _argrepr(info: CodeInfo, name: str, arg: int) -> str:
    if name == "LOAD_CONST" and arg < len(info.consts):
        return f"{arg} ({info.consts[arg]!r})"
    if name == "LOAD_FAST" and arg < len(info.varnames):
        return f"{arg} ({info.varnames[arg]})"
    if name == "BINARY_OP":
        return f"{arg} ({_NB_OPS.get(arg, '?')})"
    return ""
