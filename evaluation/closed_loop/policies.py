"""What steers the virtual car: a model in-process, a drive server, or a baseline.

A policy maps a batch of views to steering commands (-1..1, > 0 right):
``policy(views, ctx) -> np.ndarray`` with ``views`` uint8 (K, 160, 320, 3) and
``ctx`` a :class:`StepContext` (what the simulator's telemetry would carry, plus
the recorded human steering of the reference frame, for the baselines).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tools.simclient import SimulatorClient, SimulatorProtocolError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepContext:
    frame: np.ndarray  # (K,) reference frame index in the path
    human: np.ndarray  # (K,) recorded steering of that frame
    speed_mph: np.ndarray  # (K,) speed of the virtual car
    steering: np.ndarray  # (K,) command currently applied to the car


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
