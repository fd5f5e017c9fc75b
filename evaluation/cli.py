"""``python evaluate.py COMMAND``: the command line (replay, closed-loop, path, calibrate,
compare, robustness, response).

One parser per subcommand, the option groups they share defined once. Only this
module configures logging (:func:`core.cli.setup_logging`). The commands' bodies are
:mod:`evaluation.commands`, imported once the command line is parsed (they load
matplotlib and the report modules, which ``--help`` does not need). User errors (a
missing log, a MODEL that is not a model, an output folder that already holds
results) end with one logged line naming what was expected and what was found, and
exit status 2 (:func:`core.cli.error_exit`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from core.cli import HelpFormatter, error_exit, setup_logging
from evaluation.closed_loop.policies import EXPERT_LOOKAHEAD_M, REPEAT_NOISE
from evaluation.closed_loop.recovery import RECOVERY_OFFSETS_M, RECOVERY_YAWS_DEG
from evaluation.closed_loop.response import DEFAULT_EVERY
from evaluation.robustness.benchmark import (
    CLOSED_LOOP_INTENSITIES,
    DEFAULT_DRIVE_S,
    DEFAULT_FRAMES,
)
from evaluation.robustness.corruptions import CORRUPTIONS
from serving import RUNTIMES

logger = logging.getLogger("evaluation")

DEFAULT_URL = "ws://127.0.0.1:4567/socket.io/?EIO=4&transport=websocket"


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 8,9.5,11; got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one number; got {text!r}")
    return values


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}; got {text!r}")
        return value

    return parse


MODEL_HELP = "model file (.keras, .h5, .tflite, .onnx) or a training run folder"


def _model_and_logs(p: argparse.ArgumentParser, model_help: str = MODEL_HELP) -> None:
    p.add_argument("model", metavar="MODEL", help=model_help)
    _logs(p)


def _logs(p: argparse.ArgumentParser) -> None:
    p.add_argument("logs", nargs="+", metavar="LOG", help="driving_log.csv or its folder")


def _output_options(p: argparse.ArgumentParser) -> None:
    """``--out``, ``--overwrite`` and the log level: every command has them."""
    p.add_argument("--out", required=True, type=Path, help="output folder (new or empty)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty --out, replacing same-named files",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="warnings only, no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _runtime_options(p: argparse.ArgumentParser) -> None:
    """How a model runs: every command that loads one has them."""
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="inference path, as drive.py serves it (default auto: .tflite/.onnx files as "
        "they are, Keras models converted to LiteRT in memory with a parity check, else "
        "the compiled Keras call; keras: the compiled Keras call; tflite: LiteRT or fail; "
        "onnx: an .onnx file)",
    )
    p.add_argument(
        "--threads",
        type=_count(1),
        default=2,
        help="inference threads (default 2: replay of eff 564-591 frames/s against "
        "385-392 with 1 on the 2-core machine, decoding overlapping in other threads)",
    )


def _closed_loop_options(p: argparse.ArgumentParser) -> None:
    """The closed loop's method: ``closed-loop`` and ``robustness`` have them."""
    p.add_argument(
        "--criterion",
        choices=("road", "nvidia"),
        default="road",
        help="intervention when a wheel leaves the road estimated from the recording "
        "(road, the default) or NVIDIA's rule: the car's centre beyond --offset-limit "
        "from the recorded path or its heading beyond --heading-limit (nvidia)",
    )
    p.add_argument(
        "--offset-limit",
        type=float,
        default=1.0,
        help="--criterion nvidia: distance from the path, m (default 1.0)",
    )
    p.add_argument(
        "--heading-limit",
        type=float,
        default=10.0,
        help="--criterion nvidia: heading error, degrees (default 10)",
    )
    p.add_argument(
        "--path",
        choices=("images", "steering"),
        default="images",
        help="reference path turning as measured from the frames (images, the default) "
        "or as the logged steering says through a kinematic bicycle (steering)",
    )
    p.add_argument(
        "--car",
        choices=("fitted", "bicycle"),
        default="fitted",
        help="the virtual car's answer to steering: fitted to the recording's measured "
        "turning (lag, gain; the default) or the plain kinematic bicycle",
    )
    p.add_argument("--calibration", type=Path, help="calibration.json from `evaluate.py calibrate`")
    p.add_argument(
        "--latency",
        type=int,
        default=0,
        choices=range(0, 4),
        metavar="FRAMES",
        help="added latency in frames, 0-3 (default 0)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py",
        description="Evaluate steering models on recorded Udacity simulator logs.",
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_replay,
        _add_closed_loop,
        _add_path,
        _add_calibrate,
        _add_compare,
        _add_robustness,
        _add_response,
    ):
        add(sub)
    return parser


def _subparser(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    return sub.add_parser(name, formatter_class=HelpFormatter, **kwargs)


def _add_replay(sub) -> None:
    """``evaluate.py replay MODEL LOG...``: open loop, every frame."""
    p = _subparser(
        sub,
        "replay",
        help="open loop: the model against the human on every frame",
        description="Run MODEL over every centre frame of the logs; write "
        "per-frame predictions, metrics and plots.",
    )
    _model_and_logs(p)
    p.add_argument("--worst", type=_count(0), default=12, help="frames in the worst-frame gallery")
    _runtime_options(p)
    _output_options(p)


def _add_closed_loop(sub) -> None:
    """``evaluate.py closed-loop MODEL LOG...``: NVIDIA's closed loop."""
    p = _subparser(
        sub,
        "closed-loop",
        help="NVIDIA-style closed loop on the recorded path",
        description="Drive a virtual car along the path rebuilt from each log, "
        "steered by MODEL on synthesised views; count interventions.",
    )
    _model_and_logs(
        p,
        "model file (.keras, .h5, .tflite, .onnx) or run folder (with --via-server: only a label)",
    )
    _closed_loop_options(p)
    p.add_argument(
        "--recovery-points",
        type=_count(0),
        default=8,
        help="start points per log for the recovery trials (default 8; 0 = none)",
    )
    _repeat_options(p)
    p.add_argument(
        "--via-server",
        nargs="?",
        const=DEFAULT_URL,
        default=None,
        metavar="URL",
        help="steer through a running `python drive.py MODEL` as the simulator "
        f"would (default URL {DEFAULT_URL})",
    )
    p.add_argument(
        "--baseline-bias",
        type=float,
        default=0.02,
        help="bias added to the replayed human steering baseline (default 0.02 = 0.5 deg)",
    )
    p.add_argument(
        "--steering-smoothing",
        type=float,
        default=1.0,
        metavar="ALPHA",
        help="smooth the model's steering as a drive server could: ALPHA x its answer + "
        "(1 - ALPHA) x the wheel the car applies, 0 < ALPHA <= 1 (default 1: none; the "
        "baselines are never smoothed)",
    )
    _expert_option(p)
    p.add_argument("--no-video", action="store_true", help="skip views.mp4")
    _runtime_options(p)
    _output_options(p)


def _expert_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--expert",
        type=float,
        default=EXPERT_LOOKAHEAD_M,
        metavar="M",
        help="also drive the expert: the recorded steering plus the recovery label's pure "
        "pursuit over M m from the car's true pose, which no camera sees (the labels' "
        f"ceiling, not a baseline; default {EXPERT_LOOKAHEAD_M:g}; 0 = none)",
    )


REPEATS_HELP = (
    "drives per log and policy: the first as the policy steers, the others with a tiny "
    "steering noise (--repeat-noise) added; the report gives each drive's interventions "
    "and their spread, the margin within which two policies' counts do not differ "
    "(default 1: one drive)"
)


def _repeat_options(p: argparse.ArgumentParser, repeats_help: str = REPEATS_HELP) -> None:
    """--repeats and --repeat-noise (closed-loop, compare, robustness)."""
    p.add_argument("--repeats", type=_count(1), default=1, metavar="N", help=repeats_help)
    p.add_argument(
        "--repeat-noise",
        type=float,
        default=REPEAT_NOISE,
        metavar="SD",
        help=f"steering noise of the repeated drives, Ornstein-Uhlenbeck over 0.5 s "
        f"(default {REPEAT_NOISE:g} = {REPEAT_NOISE * 25:g} degrees of wheel)",
    )


def _add_path(sub) -> None:
    """``evaluate.py path LOG...``: the references of the logs, checked."""
    p = _subparser(
        sub,
        "path",
        help="the reference path, car response and road edges of each log, checked",
        description="Build each log's reference as closed-loop does and check it: how "
        "well repeated laps overlay (path from the frames against path from the steering), "
        "the car's fitted response, the road width and the edges drawn on real frames.",
    )
    _logs(p)
    p.add_argument("--calibration", type=Path, help="calibration.json from `evaluate.py calibrate`")
    _output_options(p)


def _add_calibrate(sub) -> None:
    """``evaluate.py calibrate LOG``: camera constants against the side cameras."""
    p = _subparser(
        sub,
        "calibrate",
        help="check/fit camera constants with the side cameras",
        description="Warp centre frames by the side cameras' offsets and compare "
        "with the real side frames; grid-search pitch, height and FOV.",
    )
    p.add_argument("log", metavar="LOG", help="driving_log.csv or its folder (with side images)")
    p.add_argument("--frames", type=_count(1), default=24, help="frames compared (default 24)")
    p.add_argument("--no-search", action="store_true", help="only check the default constants")
    p.add_argument("--pitch", type=_floats, default=None, help="pitches to try, degrees")
    p.add_argument("--height", type=_floats, default=None, help="camera heights to try, m")
    p.add_argument("--fov", type=_floats, default=None, help="vertical fields of view, degrees")
    _output_options(p)


def _add_compare(sub) -> None:
    """``evaluate.py compare RUN_OR_MODEL...``: models side by side."""
    p = _subparser(
        sub,
        "compare",
        help="models side by side: params, MACs, size, latency, error",
        description="Compare models or run folders; write report.md and figures.",
    )
    p.add_argument("models", nargs="+", metavar="RUN_OR_MODEL")
    p.add_argument(
        "--logs",
        nargs="*",
        default=[],
        metavar="LOG",
        help="logs for replay MAE and closed-loop autonomy (none: skip both)",
    )
    p.add_argument("--no-closed-loop", action="store_true", help="skip the closed-loop runs")
    p.add_argument(
        "--criterion",
        choices=("road", "nvidia"),
        default="road",
        help="closed-loop intervention criterion (default road; see closed-loop --help)",
    )
    p.add_argument(
        "--recovery-points",
        type=_count(0),
        default=0,
        help="recovery-trial start points per log (default 0: none)",
    )
    _repeat_options(p)
    _expert_option(p)
    p.add_argument("--latency-runs", type=_count(1), default=200, help="frames timed (default 200)")
    p.add_argument(
        "--robustness",
        nargs="*",
        default=None,
        metavar="DIR",
        help="add the robustness comparison (mCE, autonomy under corruption): from the "
        "folders `evaluate.py robustness` wrote, one per model in order, or with no "
        "folder measured here on --logs with its defaults",
    )
    p.add_argument(
        "--robustness-baseline",
        metavar="LABEL",
        help="the model mCE is normalised by (default the first)",
    )
    _runtime_options(p)
    _output_options(p)


def _add_robustness(sub) -> None:
    """``evaluate.py robustness MODEL LOG...``: the model under image corruptions."""
    p = _subparser(
        sub,
        "robustness",
        help="the model under image corruptions (noise, blur, JPEG, light, weather)",
        description="Corrupt the model's input frames (11 corruptions, intensities 1-5) and "
        "measure the open-loop steering change and error, and closed-loop interventions on "
        "the synthesised views; write robustness.md/.json, heat maps and corruptions.png.",
    )
    _model_and_logs(p)
    names = ", ".join(CORRUPTIONS)
    p.add_argument("--corruptions", default="all", help=f"comma list or all (default): {names}")
    p.add_argument(
        "--intensities", default="1,2,3,4,5", help="open-loop intensities 1-5 (default all)"
    )
    p.add_argument(
        "--frames",
        type=_count(0),
        default=DEFAULT_FRAMES,
        help=f"open loop: at most N evenly spaced frames per log (default {DEFAULT_FRAMES}; "
        "0: every frame)",
    )
    p.add_argument("--closed-loop-corruptions", default=None, help="default: as --corruptions")
    p.add_argument(
        "--closed-loop-intensities",
        default=",".join(map(str, CLOSED_LOOP_INTENSITIES)),
        help="closed-loop intensities (default 1,3,5: a drive per corruption and intensity "
        "costs seconds to minutes)",
    )
    p.add_argument("--no-closed-loop", action="store_true", help="open loop only")
    p.add_argument(
        "--drive-seconds",
        type=float,
        default=DEFAULT_DRIVE_S,
        help=f"closed loop: drive the first S seconds of each stretch (default "
        f"{DEFAULT_DRIVE_S:g}; 0: all of it)",
    )
    p.add_argument("--seed", type=int, default=0, help="corruption seed (default 0)")
    _repeat_options(
        p,
        "closed loop: drives of the clean views, the first as the model steers, the others "
        "with a tiny steering noise (--repeat-noise); the report gives their spread, within "
        "which a corruption's count is no change (default 1; corrupted drives stay one each)",
    )
    p.add_argument(
        "--grid-frame",
        type=_count(0),
        default=None,
        help="row of the first log shown in corruptions.png (default its middle frame)",
    )
    _closed_loop_options(p)
    _runtime_options(p)
    _output_options(p)


def _add_response(sub) -> None:
    """``evaluate.py response MODEL LOG...``: the answer to a displacement."""
    p = _subparser(
        sub,
        "response",
        help="how strongly the model steers back from a displacement, against its label",
        description="Put the car where the recovery trials start it (0.5 and 1 m to "
        "either side, turned 5 degrees) at frames spread along each log, synthesise the "
        "view and set the model's change of steering beside the recovery label's change "
        "(the function training labels with); write response.md/.json, probes.csv and "
        "response.png.",
    )
    _model_and_logs(p)
    p.add_argument(
        "--lookahead",
        type=float,
        default=None,
        metavar="M",
        help="the recovery label's look-ahead, m (default the run's own, with its "
        f"--recovery-gain, from config.json beside the model; without one {EXPERT_LOOKAHEAD_M:g})",
    )
    p.add_argument(
        "--offsets",
        type=_floats,
        default=RECOVERY_OFFSETS_M,
        help="lateral displacements of the car, m, positive to the right (default the "
        "recovery trials': " + ",".join(f"{v:g}" for v in RECOVERY_OFFSETS_M) + ")",
    )
    p.add_argument(
        "--yaws",
        type=_floats,
        default=RECOVERY_YAWS_DEG,
        help="turns of the car, degrees, positive to the right (default the recovery "
        "trials': " + ",".join(f"{v:g}" for v in RECOVERY_YAWS_DEG) + ")",
    )
    p.add_argument(
        "--every",
        type=_count(1),
        default=DEFAULT_EVERY,
        metavar="N",
        help=f"a probe every N frames of each stretch (default {DEFAULT_EVERY})",
    )
    p.add_argument("--calibration", type=Path, help="calibration.json from `evaluate.py calibrate`")
    _runtime_options(p)
    _output_options(p)


def _configure_logging(args) -> None:
    setup_logging(verbose=args.verbose, quiet=args.quiet)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args)
    # heavy: imported on use (matplotlib, through the report modules)
    from evaluation import commands

    try:
        return commands.COMMANDS[args.command](args)
    except commands.EXPECTED_ERRORS as exc:
        return error_exit(exc, logger)
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
