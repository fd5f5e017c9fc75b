"""The seeds' arithmetic of cheap convolutions, reproduced with real Keras layers.

``python -m evaluation.explain --conv 3 256 5 --input 12`` builds one convolution
(in-channels, out-channels, kernel) on a square input five ways and counts each with
the project's MAC counter (:mod:`models.macs`, the one ``evaluate.py compare``
uses), so the figures here and in the architecture comparison cannot disagree:

- ``regular``: one ``Conv2D(out, k)``;
- ``spatial``: spatially separable, ``Conv2D(out, (k, 1))`` then a per-channel
  ``DepthwiseConv2D((1, k))``: every k x k x in filter becomes a rank-1 product
  (k x 1 x in, then 1 x k), so a 3x3 single-channel filter costs 3 + 3 = 6, not 9;
- ``depthwise``: depthwise separable, ``DepthwiseConv2D(k)`` then ``Conv2D(out, 1)``;
- ``grouped``: ``Conv2D(out, k, groups=g)`` then :class:`ChannelShuffle` (ShuffleNet);
- ``effnet``: the EffNet block (1x1 to ``out // 2``, depthwise 1 x k, max-pool (2,1),
  depthwise k x 1, (2,1) conv with stride (1,2) to ``out``); it halves height and
  width, so its output is a quarter of the others' (see the ``output`` column); its
  depthwise convs always pad 'same', as in the paper.

Conventions are :mod:`models.macs`' (one multiply-add = one MAC, bias free).
``thop ops`` adds one operation per output element of every biased layer, which is
what ``thop.profile`` reports for a PyTorch ``Conv2d`` (the seeds' figures).

It reuses that counter rather than write another; it loads Keras anyway (it builds
the layers), so :mod:`models` is imported at the top.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections import defaultdict
from dataclasses import dataclass

import keras
from keras import layers

from core.cli import HelpFormatter, error_exit, setup_logging
from models import build_model, parameter_counts
from models.layers import ChannelShuffle
from models.macs import profile

logger = logging.getLogger("evaluation.explain")

VARIANTS = ("regular", "spatial", "depthwise", "grouped", "effnet")


@dataclass(frozen=True)
class Row:
    variant: str
    params: int
    macs: int
    thop_ops: int
    output: tuple[int, ...]
    note: str = ""


def _build(
    variant: str, c_in: int, c_out: int, k: int, size: int, *, groups: int, padding: str, bias: bool
) -> keras.Model:
    inp = keras.Input((size, size, c_in), name="x")
    if variant == "regular":
        x = layers.Conv2D(c_out, k, padding=padding, use_bias=bias, name="conv")(inp)
    elif variant == "spatial":
        x = layers.Conv2D(c_out, (k, 1), padding=padding, use_bias=False, name="conv_kx1")(inp)
        x = layers.DepthwiseConv2D((1, k), padding=padding, use_bias=bias, name="dw_1xk")(x)
    elif variant == "depthwise":
        x = layers.DepthwiseConv2D(k, padding=padding, use_bias=False, name="dw")(inp)
        x = layers.Conv2D(c_out, 1, use_bias=bias, name="pw")(x)
    elif variant == "grouped":
        x = layers.Conv2D(c_out, k, padding=padding, groups=groups, use_bias=bias, name="gconv")(
            inp
        )
        x = ChannelShuffle(groups, name="shuffle")(x)
    elif variant == "effnet":
        mid = max(1, c_out // 2)
        x = layers.Conv2D(mid, 1, use_bias=False, name="pw")(inp)
        # Always 'same' as in the paper (and models.blocks): 'valid' would shrink a
        # small input to nothing after the pool.
        x = layers.DepthwiseConv2D((1, k), padding="same", use_bias=False, name="dw_1xk")(x)
        x = layers.MaxPooling2D((2, 1), strides=(2, 1), name="pool")(x)
        x = layers.DepthwiseConv2D((k, 1), padding="same", use_bias=False, name="dw_kx1")(x)
        x = layers.Conv2D(
            c_out, (2, 1), strides=(1, 2), padding="same", use_bias=bias, name="proj"
        )(x)
    else:
        raise ValueError(f"variant must be one of {VARIANTS}. Received: variant={variant!r}")
    return keras.Model(inp, x, name=variant)


def variants(
    c_in: int,
    c_out: int,
    k: int,
    size: int,
    *,
    groups: int | None = None,
    padding: str = "valid",
    bias: bool = False,
) -> list[Row]:
    """Parameters and MACs of one conv done each of the five ways.

    ``groups`` defaults to ``gcd(c_in, c_out)``; the grouped row is left out when that
    is 1 (it would be the regular conv) or ``groups`` does not divide both.
    """
    for label, value in (("c_in", c_in), ("c_out", c_out), ("kernel", k), ("input", size)):
        if value < 1:
            raise ValueError(f"{label} must be >= 1. Received: {label}={value}")
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same'. Received: {padding=}")
    if padding == "valid" and k > size:
        raise ValueError(f"kernel {k} is larger than the {size}x{size} input with valid padding")
    g = math.gcd(c_in, c_out) if groups is None else groups
    rows = []
    for variant in VARIANTS:
        if variant == "grouped" and (g < 2 or c_in % g or c_out % g):
            continue
        model = _build(variant, c_in, c_out, k, size, groups=g, padding=padding, bias=bias)
        prof = profile(model)
        biased = sum(
            math.prod(r.output_shape[1:])
            for r, layer in zip(prof, model.layers, strict=True)
            if getattr(layer, "use_bias", False)
        )
        macs = sum(r.macs for r in prof)
        note = f"g={g}, shuffled" if variant == "grouped" else ""
        if variant == "effnet":
            note = f"mid={max(1, c_out // 2)}; halves H and W"
        rows.append(
            Row(
                variant,
                sum(r.params for r in prof),
                macs,
                macs + biased,
                tuple(model.output_shape[1:]),
                note,
            )
        )
    return rows


def table(rows: list[Row]) -> str:
    """Markdown table; shares are relative to the regular conv."""
    ref = rows[0]
    lines = [
        "| variant | params | % params | MACs | % MACs | thop ops | output | note |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.variant} | {r.params:,} | {100 * r.params / ref.params:.2f}% | {r.macs:,} "
            f"| {100 * r.macs / ref.macs:.2f}% | {r.thop_ops:,} "
            f"| {'x'.join(map(str, r.output))} | {r.note} |"
        )
    return "\n".join(lines)


def parts(name: str) -> str:
    """Parameters and MACs per part (the prefix of each layer name: block1, stage2,
    head...) of a registered architecture: the figures quoted in models/families.py."""
    model = build_model(name)
    rows = profile(model)
    by_part: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        by_part[r.name.split("_")[0]][0] += r.params
        by_part[r.name.split("_")[0]][1] += r.macs
    total = sum(r.macs for r in rows)
    lines = [f"{name}: {parameter_counts(model)['total']:,} parameters, {total:,} MACs"]
    lines += [f"  {p:<12} {v[0]:>9,} params {v[1]:>13,} MACs" for p, v in by_part.items()]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.explain",
        description="Parameters and MACs of one convolution done five ways.",
        formatter_class=HelpFormatter,
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--conv", nargs=3, type=int, metavar=("IN", "OUT", "KERNEL"))
    what.add_argument(
        "--profile",
        nargs="+",
        metavar="ARCH",
        help="parameters and MACs per part of registered architectures",
    )
    parser.add_argument("--input", type=int, help="square input size (with --conv)")
    parser.add_argument(
        "--groups", type=int, default=None, help="groups of the grouped conv (default gcd(IN, OUT))"
    )
    parser.add_argument("--padding", choices=("valid", "same"), default="valid")
    parser.add_argument("--bias", action=argparse.BooleanOptionalAction, default=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.profile:
        try:
            print("\n".join(parts(name) for name in args.profile))
        except ValueError as exc:
            return error_exit(exc, logger)
        return 0
    if args.input is None:
        return error_exit("--conv needs --input", logger)
    c_in, c_out, k = args.conv
    try:
        rows = variants(
            c_in, c_out, k, args.input, groups=args.groups, padding=args.padding, bias=args.bias
        )
    except ValueError as exc:
        return error_exit(exc, logger)
    print(
        f"Conv {c_in}->{c_out}, {k}x{k}, on {args.input}x{args.input}x{c_in}, "
        f"padding {args.padding}, bias {'on' if args.bias else 'off'}"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
