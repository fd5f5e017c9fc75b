"""``python slim.py MODEL_OR_RUN [--data DIR...] [--val DIR...] [--tolerance 0.02]``.

Converts a trained conventional model (``base``: KxK ``Conv2D`` stages) into a
depthwise-separable one, layer by layer, keeping a replacement only when the whole
model's validation MSE stays within ``(1 + tolerance)`` x the original's (a relative
tolerance: 0.02 allows 2% more validation MSE in total, for all replacements
together). See :mod:`slimming.search` for the procedure.

Writes ``--out DIR`` (default ``<run>/slim/`` for a run folder, ``<name>_slim/`` beside
a model file): ``model.keras`` (the converted network), ``report.json`` and
``report.md``. An existing output file is never replaced without ``--overwrite``.
Progress goes to stderr; a one-line summary to stdout.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
import time
from pathlib import Path

import keras

import models
from core.cli import HelpFormatter, error_exit, fields_from, setup_logging
from core.outputs import check_new_file, write_json
from core.recordings import ImageError, RecordingError
from core.runs import KERAS_SUFFIXES, ModelLoadError, config_path, read_config, resolve_model
from slimming import data as slim_data
from slimming import report as rep
from slimming.convert import Candidate, ConversionError, require_candidates
from slimming.search import E2E_MODES, INITS, Settings, Slimmer, SlimResult, final_model

logger = logging.getLogger("slim")

OUTPUT_FILES = ("model.keras", "report.json", "report.md")


class SlimError(ValueError):
    """A usage problem reported as one line, exit status 2."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _tolerance(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="slim.py",
        description="Replace a trained model's KxK convolutions by depthwise KxK + pointwise "
        "1x1 pairs, one layer at a time, keeping each only if validation MSE stays within "
        "the tolerance (seed 004's conversion).",
        formatter_class=HelpFormatter,
    )
    _add_input_options(p)
    _add_measure_options(p)
    _add_conversion_options(p)
    _add_output_options(p)
    return p


def _add_input_options(p: argparse.ArgumentParser) -> None:
    """The model and the recordings."""
    p.add_argument("model", metavar="MODEL_OR_RUN", help="a .keras/.h5 file or a run folder")
    p.add_argument(
        "--data", nargs="+", metavar="DIR", help="training recordings (default: the run config's)"
    )
    p.add_argument(
        "--val",
        nargs="+",
        metavar="DIR",
        help="validation recordings (default: the run config's val_recordings, else its "
        "held-out time blocks)",
    )


def _add_measure_options(p: argparse.ArgumentParser) -> None:
    """The acceptance rule and the frames it, the fit and the layer errors use."""
    p.add_argument(
        "--tolerance",
        type=_tolerance,
        default=Settings.tolerance,
        help="accept while val_mse <= (1 + tolerance) * original val_mse (relative, for all "
        "replacements together)",
    )
    p.add_argument(
        "--train-frames",
        type=_positive_int,
        default=slim_data.TRAIN_FRAMES,
        help="training frames used (centre camera, spread evenly over the rows)",
    )
    p.add_argument(
        "--val-frames",
        type=_positive_int,
        default=None,
        help="validation frames used (default: all of the validation recordings)",
    )
    p.add_argument(
        "--fit-frames",
        type=_positive_int,
        default=slim_data.FIT_FRAMES,
        help="training frames whose activations fit and fine-tune each pair",
    )
    p.add_argument(
        "--probe-frames",
        type=_positive_int,
        default=slim_data.PROBE_FRAMES,
        help="other training frames on which the layer errors are measured",
    )


def _add_conversion_options(p: argparse.ArgumentParser) -> None:
    """How each pair is initialised and fine-tuned, and which layers are tried."""
    d = Settings
    p.add_argument("--init", choices=INITS, default=d.init, help="initialisation used")
    p.add_argument(
        "--local-steps", type=_count, default=d.local_steps, help="layer-local Adam steps"
    )
    p.add_argument("--local-lr", type=float, default=d.local_lr)
    p.add_argument("--local-batch", type=_positive_int, default=d.local_batch)
    p.add_argument(
        "--e2e",
        choices=E2E_MODES,
        default=d.e2e,
        help="end-to-end output distillation: never, only when the layer-local result is "
        "rejected, or always",
    )
    p.add_argument("--e2e-steps", type=_count, default=d.e2e_steps)
    p.add_argument("--e2e-lr", type=float, default=d.e2e_lr)
    p.add_argument("--e2e-batch", type=_positive_int, default=d.e2e_batch)
    p.add_argument(
        "--no-backward", action="store_true", help="one sweep only (first to last layer)"
    )
    p.add_argument("--layers", nargs="+", metavar="NAME", help="only these convolutions")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    """What is measured after the conversion, where it is written, the seed, the log."""
    p.add_argument(
        "--closed-loop",
        nargs="+",
        metavar="LOG",
        help="also drive both models in closed loop on these recordings (evaluate.py's method)",
    )
    p.add_argument(
        "--latency-calls",
        type=_count,
        default=rep.LATENCY_CALLS,
        help="batch-1 calls timed per model (0: skip)",
    )
    p.add_argument("--out", type=Path, help="output folder (default: next to the input)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--seed", type=int, default=Settings.seed)
    p.add_argument("-q", "--quiet", action="store_true", help="warnings only on stderr")


def resolve_input(arg: str) -> tuple[Path, dict, Path | None]:
    """(model file, run config, config file) for a model file or run folder."""
    model_file = resolve_model(arg, KERAS_SUFFIXES)  # ModelLoadError: main reports it
    config_file = config_path(model_file)
    return model_file, read_config(model_file), config_file if config_file.is_file() else None


def default_out(model_arg: str, model_file: Path) -> Path:
    path = Path(model_arg)
    if path.is_dir():
        return path / "slim"
    return model_file.with_name(f"{model_file.stem}_slim")


def check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SlimError(f"--out must be a folder; {out} is a file")
    for name in OUTPUT_FILES:
        check_new_file(out / name, overwrite=overwrite, error=SlimError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(quiet=args.quiet)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        return run(args, argv)
    except (SlimError, ModelLoadError, ConversionError, RecordingError, ImageError) as exc:
        return error_exit(exc, logger)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    model_file, config, config_file = resolve_input(args.model)
    out = args.out or default_out(args.model, model_file)
    check_out(out, args.overwrite)
    settings = settings_from(args)
    teacher = models.load_model(model_file)
    candidates = chosen_candidates(teacher, model_file, args.layers)
    data = load_data(args, config, config_file)

    keras.utils.set_random_seed(args.seed)
    result = Slimmer(teacher, candidates, data, settings).run(args.layers)
    converted = final_model(teacher, result)

    check_out(out, args.overwrite)  # again: the run took minutes
    out.mkdir(parents=True, exist_ok=True)
    converted.save(out / "model.keras")
    figures = model_figures(teacher, converted, model_file, out)
    latency, closed = runtime_figures(args, teacher, converted, data)

    report = {
        "source": str(args.model),
        "source_file": str(model_file),
        "source_bytes": model_file.stat().st_size,
        "command": "python slim.py "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "keras_backend": keras.backend.backend(),
        "settings": {**vars(settings), "tolerance_rule": "val_mse <= (1 + tolerance) * original"},
        "data": data.summary,
        "val_mse": {
            "original": result.original_val_mse,
            "converted": result.final_val_mse,
            "limit": result.limit,
        },
        "layers": result.layer_status(),
        "attempts": result.attempts,
        **figures,
        "latency": latency,
        "closed_loop": closed,
        "seconds": time.perf_counter() - started,
    }
    report["settings"]["train_frames"] = args.train_frames
    report["settings"]["val_frames"] = args.val_frames
    write_json(out / "report.json", report)
    (out / "report.md").write_text(rep.markdown(report), encoding="utf-8")
    print(summary_line(result, candidates, figures, out))
    return 0


def settings_from(args: argparse.Namespace) -> Settings:
    """The search settings asked for: the options named after Settings fields fill them."""
    given = fields_from(Settings, args)
    try:
        return Settings(**given, backward=not args.no_backward)
    except ValueError as exc:
        raise SlimError(str(exc)) from exc


def chosen_candidates(teacher: keras.Model, model_file: Path, layers) -> list[Candidate]:
    """The replaceable convolutions of ``teacher`` (all, or the ``--layers`` named)."""
    candidates = require_candidates(teacher, str(model_file))
    if layers:
        unknown = sorted(set(layers) - {c.name for c in candidates})
        if unknown:
            raise SlimError(
                f"--layers {' '.join(unknown)}: not replaceable convolutions of {model_file}; "
                f"choose from {', '.join(c.name for c in candidates)}"
            )
    logger.info(
        "%s: %s; %d convolutions to try: %s",
        model_file,
        models.describe(teacher),
        len(candidates),
        ", ".join(f"{c.name} ({c.label})" for c in candidates),
    )
    return candidates


def load_data(
    args: argparse.Namespace, config: dict, config_file: Path | None
) -> slim_data.SlimData:
    """The frames: from --data/--val when given, else from the run's config."""
    if args.data:
        train_paths, val_paths = list(args.data), list(args.val or [])
        fraction = slim_data.DEFAULT_VAL_FRACTION
    else:
        train_paths, val_paths, fraction = slim_data.recordings_from_config(config, config_file)
        if args.val:
            val_paths = list(args.val)
    return slim_data.load(
        train_paths,
        val_paths,
        val_fraction=fraction,
        train_frames=args.train_frames,
        val_frames=args.val_frames,
        fit_frames=args.fit_frames,
        probe_frames=args.probe_frames,
        seed=args.seed,
    )


def model_figures(
    teacher: keras.Model, converted: keras.Model, model_file: Path, out: Path
) -> dict[str, dict]:
    """``{"original": ..., "converted": ...}``: parameters, MACs and file size of each."""
    with tempfile.TemporaryDirectory() as tmp:
        original_copy = Path(tmp) / "original.keras"
        teacher.save(original_copy)
        original = rep.model_figures(teacher, original_copy)
        original["keras_file"] = str(model_file)
    return {"original": original, "converted": rep.model_figures(converted, out / "model.keras")}


def runtime_figures(
    args: argparse.Namespace, teacher: keras.Model, converted: keras.Model, data: slim_data.SlimData
) -> tuple[dict | None, dict | None]:
    """(latency, closed loop) of both models on LiteRT, each None where not asked for."""
    latency, closed = None, None
    if not (args.latency_calls or args.closed_loop):
        return latency, closed
    predictors = rep.litert_predictors({"original": teacher, "converted": converted})
    if args.latency_calls:
        latency = rep.latency(predictors, data.val_frames[0], calls=args.latency_calls)
        for k in ("original", "converted"):
            if "median_ms" in latency[k]:
                logger.info(
                    "LiteRT batch-1 latency, %s: median %.2f ms", k, latency[k]["median_ms"]
                )
    if args.closed_loop:
        closed = rep.closed_loop(predictors, list(args.closed_loop))
    return latency, closed


def summary_line(result: SlimResult, candidates: list, figures: dict, out: Path) -> str:
    n = sum(v == "replaced" for v in result.layer_status().values())
    p0, p1 = (figures[k]["params"]["total"] for k in ("original", "converted"))
    return (
        f"slim.py: replaced {n} of {len(candidates)} convolutions; parameters {p0:,} -> {p1:,}; "
        f"validation MSE {result.original_val_mse:.5f} -> {result.final_val_mse:.5f}; "
        f"wrote {out / 'model.keras'}, report.json, report.md"
    )
