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
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from slimming import activations as act
from slimming.convert import Candidate, build_student, conv_weights, get_pair_factors
from slimming.data import SlimData
from slimming.factorize import Factors, dropped_energy, svd_factors
from slimming.finetune import e2e_distill, local_distill

logger = logging.getLogger(__name__)

INITS = ("svd", "ls")
E2E_MODES = ("off", "on-reject", "always")


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
class _LayerTrial:
    """One candidate under trial: its trained kernel and bias, and the real activations
    around it (:func:`slimming.activations.collect`)."""

    cand: Candidate
    kernel: np.ndarray
    bias: np.ndarray | None
    ld: act.LayerData

    def errors(self, factors: dict[str, Factors | None]) -> dict[str, Any]:
        """Relative errors on the probe frames (:func:`slimming.activations.errors`)."""
        ld = self.ld
        return act.errors(
            self.cand, self.kernel, self.bias, ld.student_probe, ld.teacher_probe, factors
        )


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
        layer = self._layer_trial(cand, accepted, upstream_replaced=bool(upstream))
        err, init = self._initialise(layer)  # 1. both ways
        factors, local = self._local_finetune(layer, init, err, seed)  # 2a.
        # 3. acceptance on the whole model, after 2b. where the settings ask for it
        val = self.val_mse(self.build({**accepted, cand.name: factors}))
        logger.info(
            "  validation MSE %.5f (original %.5f, limit %.5f)",
            val,
            self.original_val_mse,
            self.limit,
        )
        e2e = None
        if self._wants_e2e(val):
            factors, val, e2e = self._e2e_finetune(layer, accepted, factors, val, err, seed)
        kernel = layer.kernel
        del layer  # and its activations, before the next layer's
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
            "init": self.settings.init,
            "local": local,
            "e2e": e2e,
            "val_mse": val,
            "val_ratio": val / self.original_val_mse if self.original_val_mse else float("nan"),
            "accepted": accepted_now,
            "seconds": time.perf_counter() - start,
        }
        return record, factors

    def _layer_trial(
        self, cand: Candidate, accepted: dict[str, Factors], *, upstream_replaced: bool
    ) -> _LayerTrial:
        """The candidate's trained kernel and the real activations around it, with the
        layers accepted so far in place upstream."""
        d = self.data
        kernel, bias = conv_weights(self.teacher, cand.name)
        current = self.build(accepted) if accepted else self.teacher
        ld = act.collect(
            self.teacher,
            current,
            cand.name,
            d.train_frames[d.fit_idx],
            d.train_frames[d.probe_idx],
            upstream_replaced=upstream_replaced,
        )
        return _LayerTrial(cand, kernel, bias, ld)

    def _initialise(self, layer: _LayerTrial) -> tuple[dict[str, Any], Factors]:
        """Step 1: the pair by SVD of the kernel and by least squares on the activations,
        both measured; returns the errors and the initialisation the settings choose."""
        f_svd = svd_factors(layer.kernel, layer.bias)
        ld = layer.ld
        f_ls = act.fit_pointwise(
            layer.cand, f_svd, layer.kernel, layer.bias, ld.student_fit, ld.teacher_fit
        )
        err = layer.errors({"upstream": None, "svd": f_svd, "ls": f_ls})
        logger.info(
            "  error after init (relative MSE, pre-activation, %d probe frames): svd %.4g, "
            "ls %.4g (original kernel on these inputs: %.4g)",
            len(self.data.probe_idx),
            err["svd"]["pre"],
            err["ls"]["pre"],
            err["upstream"]["pre"],
        )
        return err, f_ls if self.settings.init == "ls" else f_svd

    def _local_finetune(
        self, layer: _LayerTrial, init: Factors, err: dict[str, Any], seed: int
    ) -> tuple[Factors, dict[str, Any] | None]:
        """Step 2a: layer-local distillation, kept where it lowers the probe error (adds
        ``err["tuned"]``); returns the factors kept and the record of the step."""
        s = self.settings
        if not s.local_steps:
            return init, None
        ld = layer.ld
        tuned, losses = local_distill(
            layer.cand,
            init,
            layer.kernel,
            layer.bias,
            ld.student_fit,
            ld.teacher_fit,
            steps=s.local_steps,
            lr=s.local_lr,
            batch=s.local_batch,
            seed=seed,
        )
        err["tuned"] = layer.errors({"t": tuned})["t"]
        # The loss is on the activated output, so that is what decides.
        kept = "tuned" if err["tuned"]["post"] <= err[s.init]["post"] else s.init
        if kept != "tuned":
            logger.info("  fine-tuning did not lower the probe error; keeping the init")
        logger.info(
            "  error after local fine-tuning: %.4g pre-activation, %.4g post (init %.4g)",
            err["tuned"]["pre"],
            err["tuned"]["post"],
            err[s.init]["post"],
        )
        local = {
            "steps": s.local_steps,
            "loss_first": losses[0],
            "loss_last10": float(np.mean(losses[-10:])),
            "kept": kept,
        }
        return (tuned if kept == "tuned" else init), local

    def _wants_e2e(self, val: float) -> bool:
        s = self.settings
        return bool(s.e2e_steps) and (
            s.e2e == "always" or (s.e2e == "on-reject" and val > self.limit)
        )

    def _e2e_finetune(
        self,
        layer: _LayerTrial,
        accepted: dict[str, Factors],
        factors: Factors,
        val: float,
        err: dict[str, Any],
        seed: int,
    ) -> tuple[Factors, float, dict[str, Any]]:
        """Step 2b: end-to-end output distillation, only the pair trains; kept where it
        lowers validation MSE (adds ``err["e2e"]``). Returns (factors, val, record)."""
        s, name = self.settings, layer.cand.name
        student = self.build({**accepted, name: factors}, drop_dropout=True)
        tuned, losses = e2e_distill(
            student,
            name,
            self.data.train_frames,
            self.teacher_train_out(),
            steps=s.e2e_steps,
            lr=s.e2e_lr,
            batch=s.e2e_batch,
            seed=seed + 1,
        )
        val_e2e = self.val_mse(self.build({**accepted, name: tuned}))
        e2e = {
            "steps": s.e2e_steps,
            "loss_first": losses[0],
            "loss_last10": float(np.mean(losses[-10:])),
            "val_mse_before": val,
            "val_mse_after": val_e2e,
            "kept": val_e2e <= val,
        }
        logger.info("  validation MSE after end-to-end distillation %.5f", val_e2e)
        err["e2e"] = layer.errors({"e": tuned})["e"]
        if val_e2e <= val:
            return tuned, val_e2e, e2e
        return factors, val, e2e

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
