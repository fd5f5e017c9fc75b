"""What steers the virtual car: a model in-process, a drive server, a baseline, or
the expert.

A policy maps a batch of views to steering commands (-1..1, > 0 right):
``policy(views, ctx) -> np.ndarray`` with ``views`` uint8 (K, 160, 320, 3) and
``ctx`` a :class:`StepContext` (what the simulator's telemetry would carry, plus
the recorded human steering of the reference frame, for the baselines, and the car's
true pose, for the expert).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from tools.simclient import SimulatorClient, SimulatorProtocolError

logger = logging.getLogger(__name__)

#: ``--repeat-noise``: steering noise of the repeated drives (Ornstein-Uhlenbeck, 0.5 s),
#: 0.001 = 0.025 degrees of wheel, far below what any model resolves. The closed loop
#: amplifies such a perturbation: on nicholas_t2_jungle it moved eff's count over
#: 142-158 in five drives, about as far as running the same model through Keras
#: instead of LiteRT does (138 against 149); docs/evaluation.md, "How far one drive's
#: count can be trusted".
REPEAT_NOISE = 0.001


@dataclass(frozen=True)
class StepContext:
    frame: np.ndarray  # (K,) reference frame index in the path
    human: np.ndarray  # (K,) recorded steering of that frame
    speed_mph: np.ndarray  # (K,) speed of the virtual car
    steering: np.ndarray  # (K,) command currently applied to the car
    #: The car's true pose against the reference frame: rear axle right of the
    #: recorded one (m) and turned right of it (rad). No camera sees it; only the
    #: expert steers by it.
    offset_m: np.ndarray | None = None
    yaw_rad: np.ndarray | None = None


class Policy:
    name = "policy"

    def __call__(self, views: np.ndarray, ctx: StepContext) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; the default has none."""


class ModelPolicy(Policy):
    """A :class:`serving.Predictor` called in-process, one frame at a time."""

    def __init__(self, predictor, name: str = "model"):
        self.predictor = predictor
        self.name = name

    def __call__(self, views, ctx):
        return np.array([self.predictor.predict(v) for v in views], dtype=np.float64)


class ConstantPolicy(Policy):
    """Constant steering (0: the straight-ahead baseline)."""

    def __init__(self, value: float = 0.0):
        self.value = float(value)
        self.name = f"constant {self.value:+g}"

    def __call__(self, views, ctx):
        return np.full(len(views), self.value)


class HumanReplayPolicy(Policy):
    """The recorded human steering of the nearest frame plus ``bias``: blind to the
    view, so it cannot correct a displacement (the open-loop baseline)."""

    def __init__(self, bias: float = 0.0):
        self.bias = float(bias)
        self.name = f"human replay {self.bias:+g}"

    def __call__(self, views, ctx):
        return np.clip(ctx.human + self.bias, -1.0, 1.0)


#: ``--expert``'s look-ahead: the recovery label's of the recommended eff and eff-slim
#: command (docs/driving-quality.md, "4 m on every architecture").
EXPERT_LOOKAHEAD_M = 4.0


def check_expert(lookahead_m: float) -> None:
    """``--expert M``: a look-ahead > 0 m, or 0 for no expert (ValueError, named)."""
    if not (math.isfinite(lookahead_m) and lookahead_m >= 0):
        raise ValueError(
            f"--expert needs a look-ahead in metres > 0 (0 = no expert), got {lookahead_m:g}"
        )


class ExpertPolicy(Policy):
    """The recipe's teacher: the recorded steering plus the pure-pursuit correction
    back to the recorded path over ``lookahead_m``, from the car's true pose: the
    label training gives the view of that pose (:func:`training.recovery_view.
    recovery_label`, the same function).

    It sees what no camera policy sees, so it is no baseline to beat but the ceiling
    of the labels in this closed loop: where it fails, the labels or the evaluator's
    road are at fault, not perception; where a model falls short of it, the model has
    not learnt what its labels teach."""

    def __init__(self, lookahead_m: float = EXPERT_LOOKAHEAD_M):
        check_expert(lookahead_m)
        if not lookahead_m:
            raise ValueError("the expert needs a look-ahead > 0 m")
        from training.recovery_view import recovery_label  # heavy: keras

        self.lookahead_m = float(lookahead_m)
        self._label = recovery_label
        self.name = f"expert {self.lookahead_m:g} m"

    def __call__(self, views, ctx):
        if ctx.offset_m is None or ctx.yaw_rad is None:
            raise ValueError(
                "the expert steers by the car's true pose; this closed loop gave none "
                "(StepContext.offset_m / yaw_rad)"
            )
        label = self._label(ctx.human, ctx.offset_m, ctx.yaw_rad, self.lookahead_m)
        return np.asarray(label, np.float64)


class NoisyPolicy(Policy):
    """``policy`` plus Ornstein-Uhlenbeck steering noise: standard deviation
    ``sigma`` (steering units), correlation time ``tau_s`` (a held error, like a
    driver's, not white jitter that the car's lag would filter away)."""

    def __init__(self, policy: Policy, sigma: float, *, tau_s: float = 0.5, seed: int = 0):
        if sigma < 0:
            raise ValueError(f"noise sigma must be >= 0, got {sigma}")
        self.policy, self.sigma, self.tau_s = policy, float(sigma), float(tau_s)
        self.name = f"{policy.name} + noise {sigma:g}"
        self.rng = np.random.default_rng(seed)
        self.state = np.zeros(0)
        self.last_time: float | None = None

    def __call__(self, views, ctx):
        out = np.asarray(self.policy(views, ctx), np.float64)
        if len(self.state) != len(out):
            self.state = np.zeros(len(out))
        # About one decision per control step (15 Hz): decay over 1/15 s.
        a = math.exp(-1.0 / (15.0 * self.tau_s))
        self.state = a * self.state + self.sigma * math.sqrt(1 - a * a) * self.rng.normal(
            size=len(out)
        )
        return np.clip(out + self.state, -1.0, 1.0)

    def close(self) -> None:
        self.policy.close()


def check_smoothing(alpha: float) -> None:
    """ValueError unless ``alpha`` is a weight on the new answer in (0, 1]."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(
            f"steering smoothing needs a weight on the new answer in (0, 1], got {alpha}"
        )


class SmoothedPolicy(Policy):
    """``policy``'s steering smoothed against the command the car already applies,
    ``alpha * answer + (1 - alpha) * applied`` (an exponential moving average with
    weight ``alpha`` on the new answer; 1 = no smoothing). A drive server can do
    exactly this: the simulator reports the wheel it is applying in every telemetry
    message. The closed loop measures whether it helps (``evaluate.py closed-loop
    --steering-smoothing ALPHA``; docs/driving-quality.md, "What reaches the
    simulator")."""

    def __init__(self, policy: Policy, alpha: float):
        check_smoothing(alpha)
        self.policy, self.alpha = policy, float(alpha)
        self.name = f"{policy.name} smoothed {alpha:g}"

    def __call__(self, views, ctx):
        answer = np.asarray(self.policy(views, ctx), np.float64)
        return self.alpha * answer + (1.0 - self.alpha) * np.asarray(ctx.steering, np.float64)

    def close(self) -> None:
        self.policy.close()


class ServerPolicy(Policy):
    """A running drive server, reached as the simulator reaches it
    (:class:`tools.simclient.SimulatorClient`): each view goes out as telemetry
    (a quality-75 JPEG, wheel angle in degrees, speed in mph) and the ``steer``
    reply's steering comes back."""

    def __init__(self, url: str, timeout: float = 10.0, name: str = "drive server"):
        self.name = name
        self.url = url
        try:
            self.client = SimulatorClient(url, timeout=timeout).connect()
        except SimulatorProtocolError as exc:
            raise ConnectionError(
                f"--via-server: no drive server answering at {url} ({exc}); start one with "
                "`python drive.py MODEL` first"
            ) from exc
        self.rtts: list[float] = []
        logger.info("driving through the drive server at %s", url)

    def __call__(self, views, ctx):
        out = np.empty(len(views))
        for i, view in enumerate(views):
            reply = self.client.send_telemetry(
                view, float(ctx.steering[i]) * 25.0, 0.2, float(ctx.speed_mph[i])
            )
            self.rtts.append(reply.rtt)
            out[i] = reply.steering
        return out

    def close(self) -> None:
        self.client.close()


def baseline_policies(bias: float = 0.02) -> list[Policy]:
    """The blind baselines every closed-loop figure stands beside: steering straight
    and the recorded human steering replayed with a small ``bias``."""
    return [ConstantPolicy(0.0), HumanReplayPolicy(bias)]
