"""The conversion loop: one layer at a time, first to last, then back, with acceptance.

For each candidate convolution (:func:`try_layer`):

1. **initialise** the pair from the kernel (rank-1 SVD per input channel) and, with the
   depthwise part fixed, by least squares on real input activations; both are measured
   (relative MSE of the pre-activation output against the original layer, on probe
   frames that neither fit saw);
2. **fine-tune** it briefly with the original network as teacher: layer-local
   distillation, and end-to-end output distillation (by default only when the
   layer-local result fails the acceptance test);
3. **accept** it only if the whole model's validation MSE (against the human steering)
   satisfies ``val_mse <= (1 + tolerance) * original_val_mse``; otherwise the original
   layer stays, bit for bit (the student is rebuilt from the original's weights).

The tolerance is relative and always measured against the *original* model, so it is
a budget for all replacements together, not per layer. The sweep goes first to last,
then last to first retrying the rejected layers; a retry is skipped when nothing was
accepted since that layer's last attempt (it would repeat the same computation).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from slimming import activations as act
from slimming.convert import Candidate, build_student, conv_weights, get_pair_factors
from slimming.factorize import Factors, dropped_energy, svd_factors
from slimming.finetune import e2e_distill, local_distill

logger = logging.getLogger(__name__)

INITS = ("svd", "ls")
E2E_MODES = ("off", "on-reject", "always")


@dataclass
class SlimData:
    """Frames for the conversion, decoded once (uint8 ``(N, 160, 320, 3)``)."""

    train_frames: np.ndarray
    val_frames: np.ndarray
    val_labels: np.ndarray
    fit_idx: np.ndarray  # train frames whose activations fit and fine-tune the pair
    probe_idx: np.ndarray  # disjoint train frames on which layer errors are measured
    summary: dict = field(default_factory=dict)


@dataclass
class Settings:
    tolerance: float = 0.02
    init: str = "ls"
    local_steps: int = 300
    local_lr: float = 1e-3
    local_batch: int = 8
    e2e: str = "on-reject"
    e2e_steps: int = 100
    e2e_lr: float = 1e-4
    e2e_batch: int = 16
    backward: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.tolerance >= 0 and math.isfinite(self.tolerance)):
            raise ValueError(f"tolerance must be a finite number >= 0, got {self.tolerance}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.e2e not in E2E_MODES:
            raise ValueError(f"e2e must be one of {E2E_MODES}, got {self.e2e!r}")
        for key in ("local_steps", "e2e_steps"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
        for key in ("local_batch", "e2e_batch"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")


def mse(pred: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((np.asarray(pred, np.float64).reshape(-1) - labels) ** 2))


@dataclass
class SlimResult:
    original_val_mse: float
    limit: float
    accepted: dict[str, Factors]
    attempts: list[dict[str, Any]]
    candidates: list[Candidate]
    final_val_mse: float
    seconds: float

    def layer_status(self) -> dict[str, str]:
        return {c.name: "replaced" if c.name in self.accepted else "kept" for c in self.candidates}


class Slimmer:
    """Runs the sweeps over ``candidates`` of ``teacher`` (which is never modified)."""

    def __init__(
        self,
        teacher: keras.Model,
        candidates: list[Candidate],
        data: SlimData,
        settings: Settings,
    ):
        self.teacher = teacher
        self.candidates = candidates
        self.data = data
        self.settings = settings
        self.val_labels = np.asarray(data.val_labels, np.float64).reshape(-1)
        self._teacher_train_out: np.ndarray | None = None
        self.original_val_mse = self.val_mse(teacher)
        self.limit = (1.0 + settings.tolerance) * self.original_val_mse

    # ----------------------------------------------------------------- evaluation

    def val_mse(self, model: keras.Model) -> float:
        return mse(act.predict_batches(model, self.data.val_frames), self.val_labels)

    def teacher_train_out(self) -> np.ndarray:
        if self._teacher_train_out is None:
            start = time.perf_counter()
            self._teacher_train_out = act.predict_batches(
                self.teacher, self.data.train_frames
            ).reshape(-1)
            logger.info(
                "teacher steering on %d training frames (%.1f s)",
                len(self.data.train_frames),
                time.perf_counter() - start,
            )
        return self._teacher_train_out

    def build(self, replacements: dict[str, Factors], **kwargs) -> keras.Model:
        return build_student(self.teacher, replacements, self.candidates, **kwargs)

    # ----------------------------------------------------------------- one layer

    def _upstream(self, cand: Candidate, accepted: dict[str, Factors]) -> list[str]:
        order = [c.name for c in self.candidates]
        return [n for n in order[: order.index(cand.name)] if n in accepted]

    def try_layer(
        self, cand: Candidate, accepted: dict[str, Factors], *, sweep: str, seed: int
    ) -> tuple[dict[str, Any], Factors]:
        s, d = self.settings, self.data
        start = time.perf_counter()
        upstream = self._upstream(cand, accepted)
        logger.info(
            "%s (%s, %s sweep): %s -> %s parameters; upstream replaced: %s",
            cand.name,
            cand.label,
            sweep,
            f"{cand.params_before:,}",
            f"{cand.params_after:,}",
            ", ".join(upstream) or "none",
        )
        kernel, bias = conv_weights(self.teacher, cand.name)
        current = self.build(accepted) if accepted else self.teacher
        ld = act.collect(
            self.teacher,
            current,
            cand.name,
            d.train_frames[d.fit_idx],
            d.train_frames[d.probe_idx],
            upstream_replaced=bool(upstream),
        )

        # 1. initialisation, both ways
        f_svd = svd_factors(kernel, bias)
        f_ls = act.fit_pointwise(cand, f_svd, kernel, bias, ld.student_fit, ld.teacher_fit)
        err = act.errors(
            cand,
            kernel,
            bias,
            ld.student_probe,
            ld.teacher_probe,
            {"upstream": None, "svd": f_svd, "ls": f_ls},
        )
        init = f_ls if s.init == "ls" else f_svd
        logger.info(
            "  error after init (relative MSE, pre-activation, %d probe frames): svd %.4g, "
            "ls %.4g (original kernel on these inputs: %.4g)",
            len(d.probe_idx),
            err["svd"]["pre"],
            err["ls"]["pre"],
            err["upstream"]["pre"],
        )

        # 2a. layer-local distillation
        factors, local = init, None
        if s.local_steps:
            tuned, losses = local_distill(
                cand,
                init,
                kernel,
                bias,
                ld.student_fit,
                ld.teacher_fit,
                steps=s.local_steps,
                lr=s.local_lr,
                batch=s.local_batch,
                seed=seed,
            )
            err["tuned"] = act.errors(
                cand, kernel, bias, ld.student_probe, ld.teacher_probe, {"t": tuned}
            )["t"]
            # The loss is on the activated output, so that is what decides.
            kept = "tuned" if err["tuned"]["post"] <= err[s.init]["post"] else s.init
            if kept == "tuned":
                factors = tuned
            else:
                logger.info("  fine-tuning did not lower the probe error; keeping the init")
            local = {
                "steps": s.local_steps,
                "loss_first": losses[0],
                "loss_last10": float(np.mean(losses[-10:])),
                "kept": kept,
            }
            logger.info(
                "  error after local fine-tuning: %.4g pre-activation, %.4g post (init %.4g)",
                err["tuned"]["pre"],
                err["tuned"]["post"],
                err[s.init]["post"],
            )

        # 3. acceptance on the whole model
        trial = {**accepted, cand.name: factors}
        val = self.val_mse(self.build(trial))
        logger.info(
            "  validation MSE %.5f (original %.5f, limit %.5f)",
            val,
            self.original_val_mse,
            self.limit,
        )
        e2e = None
        if s.e2e_steps and (s.e2e == "always" or (s.e2e == "on-reject" and val > self.limit)):
            # 2b. end-to-end output distillation, only the pair trains
            student = self.build(trial, drop_dropout=True)
            tuned, losses = e2e_distill(
                student,
                cand.name,
                self.data.train_frames,
                self.teacher_train_out(),
                steps=s.e2e_steps,
                lr=s.e2e_lr,
                batch=s.e2e_batch,
                seed=seed + 1,
            )
            val_e2e = self.val_mse(self.build({**accepted, cand.name: tuned}))
            e2e = {
                "steps": s.e2e_steps,
                "loss_first": losses[0],
                "loss_last10": float(np.mean(losses[-10:])),
                "val_mse_before": val,
                "val_mse_after": val_e2e,
                "kept": val_e2e <= val,
            }
            logger.info("  validation MSE after end-to-end distillation %.5f", val_e2e)
            err["e2e"] = act.errors(
                cand, kernel, bias, ld.student_probe, ld.teacher_probe, {"e": tuned}
            )["e"]
            if val_e2e <= val:
                factors, val = tuned, val_e2e

        del ld
        accepted_now = val <= self.limit
        logger.info(
            "  %s %s: validation MSE %.5f is %s the limit %.5f",
            cand.name,
            "ACCEPTED" if accepted_now else "rejected",
            val,
            "within" if accepted_now else "above",
            self.limit,
        )
        k2 = float(np.sum(kernel.astype(np.float64) ** 2))
        record = {
            "layer": cand.name,
            "kernel": cand.label,
            "sweep": sweep,
            "upstream_replaced": upstream,
            "params_before": cand.params_before,
            "params_after": cand.params_after,
            "params_saved": cand.params_before - cand.params_after,
            "kernel_relative_error_svd": dropped_energy(kernel) / k2 if k2 else float("nan"),
            "error": err,
            "init": s.init,
            "local": local,
            "e2e": e2e,
            "val_mse": val,
            "val_ratio": val / self.original_val_mse if self.original_val_mse else float("nan"),
            "accepted": accepted_now,
            "seconds": time.perf_counter() - start,
        }
        return record, factors

    # ----------------------------------------------------------------- the sweeps

    def run(self, only: list[str] | None = None) -> SlimResult:
        start = time.perf_counter()
        logger.info(
            "original validation MSE %.5f on %d frames; acceptance limit %.5f (tolerance %g)",
            self.original_val_mse,
            len(self.val_labels),
            self.limit,
            self.settings.tolerance,
        )
        todo = [c for c in self.candidates if only is None or c.name in only]
        order = [("forward", c) for c in todo]
        if self.settings.backward:
            order += [("backward", c) for c in reversed(todo)]
        accepted: dict[str, Factors] = {}
        attempts: list[dict[str, Any]] = []
        last_state: dict[str, frozenset] = {}
        for i, (sweep, cand) in enumerate(order):
            if cand.name in accepted:
                continue
            state = frozenset(accepted)
            if last_state.get(cand.name) == state:
                logger.info(
                    "%s: not retried, nothing was accepted since its last attempt", cand.name
                )
                attempts.append(
                    {"layer": cand.name, "sweep": sweep, "skipped": "no change since last attempt"}
                )
                continue
            last_state[cand.name] = state
            record, factors = self.try_layer(
                cand, accepted, sweep=sweep, seed=self.settings.seed + 10 * i
            )
            attempts.append(record)
            if record["accepted"]:
                accepted[cand.name] = factors
        final = self.val_mse(self.build(accepted)) if accepted else self.original_val_mse
        return SlimResult(
            original_val_mse=self.original_val_mse,
            limit=self.limit,
            accepted=accepted,
            attempts=attempts,
            candidates=self.candidates,
            final_val_mse=final,
            seconds=time.perf_counter() - start,
        )


def final_model(teacher: keras.Model, result: SlimResult) -> keras.Model:
    """The converted network (with its Dropout layers, like the original)."""
    return build_student(teacher, result.accepted, result.candidates, name=f"{teacher.name}_slim")


__all__ = ["Settings", "SlimData", "SlimResult", "Slimmer", "final_model", "get_pair_factors"]
