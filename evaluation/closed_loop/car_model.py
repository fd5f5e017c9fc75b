"""How the simulator's car answers a steering command, fitted to real recordings.

The simulator does not turn its wheels the instant a command arrives: the turning
measured from the frames (:mod:`evaluation.closed_loop.odometry`) follows the logged steering
smoothed, a keyboard tap of one frame barely moving the car. The virtual car of the
closed loop therefore drives a *response* model, not the raw kinematic bicycle:

* the command is held from the frame it arrives until the next one;
* after a pure ``delay_s`` the wheel angle follows it as a first-order lag with
  time constant ``lag_s`` (``d wheel / dt = (gain x command - wheel) / lag_s``);
* the car then moves on the arc of the kinematic bicycle for the wheel angle
  (``curvature = tan(wheel x 25 deg) / 2.87 m``).

``CarResponse(0, 0, 1)`` is the plain kinematic bicycle (``--car bicycle``).
:func:`fit_response` chooses delay, lag and gain by least squares between the
turning each model predicts per frame interval and the turning measured from the
images; ``SIMULATOR`` holds the fit over the shared recordings (``docs/evaluation.md``
gives the figures and the command that regenerates them).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from sim.camera import steering_to_curvature


@dataclass(frozen=True)
class CarResponse:
    """Delay, first-order lag and gain of the wheel angle behind the command."""

    delay_s: float = 0.0
    lag_s: float = 0.0
    gain: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.delay_s <= 1.0:
            raise ValueError(f"delay_s must be in [0, 1]. Received: {self.delay_s}")
        if not 0.0 <= self.lag_s <= 2.0:
            raise ValueError(f"lag_s must be in [0, 2]. Received: {self.lag_s}")
        if not 0.1 <= self.gain <= 3.0:
            raise ValueError(f"gain must be in [0.1, 3]. Received: {self.gain}")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def is_bicycle(self) -> bool:
        return self.delay_s == 0.0 and self.lag_s == 0.0 and self.gain == 1.0

    def advance(
        self, wheel: np.ndarray, command: np.ndarray, dt: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Wheel state (-1..1 units) after ``dt`` seconds of a constant ``command``,
        and its mean over the interval (what moves the car). Arrays of K cars.

        The delay is handled by the caller (:class:`ResponseState`), which feeds the
        command that was in force ``delay_s`` earlier.
        """
        target = np.clip(self.gain * np.asarray(command, dtype=np.float64), -1.0, 1.0)
        wheel = np.asarray(wheel, dtype=np.float64)
        dt = np.asarray(dt, dtype=np.float64)
        if self.lag_s <= 0.0:
            return target, target
        decay = np.exp(-dt / self.lag_s)
        new = target + (wheel - target) * decay
        # Mean of target + (w0 - target) exp(-t / lag) over [0, dt].
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(dt > 0, self.lag_s * (1.0 - decay) / dt, 1.0)
        return new, target + (wheel - target) * frac


class ResponseState:
    """The response of K cars driven step by step (the closed loop's virtual car).

    ``step(commands, dt)`` applies each car's new command for ``dt`` seconds and
    returns the mean wheel position over the step; with a delay, the command in
    force is the one given ``delay_s`` earlier (the commands before the first step
    are ``initial``).
    """

    def __init__(self, response: CarResponse, initial: np.ndarray):
        self.response = response
        self.wheel = np.asarray(initial, dtype=np.float64).copy()
        # Commands with the time they took effect, newest last: (time, values).
        self._queue: list[tuple[float, np.ndarray]] = [(-math.inf, self.wheel.copy())]
        self.time = 0.0

    def reset(self, mask: np.ndarray, wheel: np.ndarray) -> None:
        """Put cars ``mask`` back to wheel position ``wheel`` (after an intervention:
        the human hands back with the wheel where the recording had it)."""
        self.wheel = np.where(mask, wheel, self.wheel)
        self._queue = [(t, np.where(mask, wheel, v)) for t, v in self._queue]

    def step(self, commands: np.ndarray, dt: np.ndarray) -> np.ndarray:
        r = self.response
        commands = np.asarray(commands, dtype=np.float64)
        dt = np.asarray(dt, dtype=np.float64)
        step_s = float(np.max(dt)) if dt.size else 0.0
        self._queue.append((self.time, commands.copy()))
        if r.delay_s <= 0.0:
            self.wheel, mean = r.advance(self.wheel, commands, dt)
        else:
            # Split the step where a delayed command takes over; every car shares the
            # clock of the longest dt (cars run in lock-step on one reference path).
            start, end = self.time - r.delay_s, self.time - r.delay_s + step_s
            bounds = [start] + [t for t, _ in self._queue if start < t < end] + [end]
            mean = np.zeros_like(self.wheel)
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                cmd = [v for t, v in self._queue if t <= lo][-1]
                part = hi - lo
                scale = np.divide(dt, step_s, out=np.zeros_like(dt), where=step_s > 0)
                self.wheel, m = r.advance(self.wheel, cmd, part * scale)
                mean += m * (part / step_s if step_s > 0 else 1.0)
            keep = [i for i, (t, _) in enumerate(self._queue) if t > end - 1e-12]
            first = max(min(keep, default=len(self._queue)) - 1, 0)
            self._queue = self._queue[first:]
        self.time += step_s
        return mean


#: The plain kinematic bicycle: the wheel is where the command says, at once.
BICYCLE = CarResponse()

#: Fitted on the shared recordings (akbari_lake, nicholas_t1_lake, bsh_t2new_jungle,
#: nicholas_t2_jungle): see ``docs/evaluation.md`` for the figures per recording and
#: ``python evaluate.py calibrate-car LOG...`` to regenerate them.
SIMULATOR = CarResponse(delay_s=0.0, lag_s=0.1, gain=1.0)


def response_per_interval(response: CarResponse, t: np.ndarray, steering: np.ndarray) -> np.ndarray:
    """Mean wheel position (-1..1) over each interval [t_i, t_i+1) when the logged
    ``steering`` drives the car (n frames -> n - 1 values); starts settled on the
    first command."""
    state = ResponseState(response, np.asarray(steering[:1], dtype=np.float64))
    dt = np.diff(np.asarray(t, dtype=np.float64))
    out = np.empty(len(dt))
    for i, step in enumerate(dt):
        out[i] = state.step(np.asarray(steering[i : i + 1], dtype=np.float64), np.array([step]))[0]
    return out


def predicted_yaw(
    response: CarResponse, t: np.ndarray, steering: np.ndarray, ds: np.ndarray
) -> np.ndarray:
    """Turn (rad, > 0 right) over each frame interval predicted from the logged
    steering by ``response`` for a car covering ``ds`` metres per interval."""
    return np.asarray(ds) * steering_to_curvature(response_per_interval(response, t, steering))


def _delayed_schedule(t: np.ndarray, steering: np.ndarray, delay: float):
    """For each interval [t_i, t_i+1): the pieces (duration, command) of the logged
    command in force ``delay`` seconds earlier (commands held frame to frame)."""
    out = []
    for i in range(len(t) - 1):
        lo, hi = t[i] - delay, t[i + 1] - delay
        j = max(int(np.searchsorted(t, lo, side="right")) - 1, 0)
        pieces = []
        start = lo
        while True:
            nxt = t[j + 1] if j + 1 < len(t) else math.inf
            end = min(nxt, hi)
            pieces.append((end - start, float(steering[j])))
            if end >= hi:
                break
            start, j = end, j + 1
        out.append(pieces)
    return out


def _grid_yaw(t, steering, ds, delay, lags, gains) -> np.ndarray:
    """Predicted turn per interval (n - 1, L, G) for every lag x gain at one delay."""
    lag = np.asarray(lags, dtype=np.float64)[:, None]
    gain = np.asarray(gains, dtype=np.float64)[None, :]
    wheel = np.clip(gain * float(steering[0]), -1.0, 1.0) * np.ones_like(lag)
    out = np.empty((len(t) - 1, lag.shape[0], gain.shape[1]))
    safe = np.where(lag > 0, lag, 1.0)
    for i, pieces in enumerate(_delayed_schedule(t, steering, delay)):
        total = sum(p for p, _ in pieces)
        acc = np.zeros_like(wheel)
        for dur, cmd in pieces:
            target = np.clip(gain * cmd, -1.0, 1.0)
            decay = np.exp(-dur / safe)
            frac = safe * (1.0 - decay) / dur if dur > 0 else np.ones_like(safe)
            mean = np.where(lag > 0, target + (wheel - target) * frac, target)
            wheel = np.where(lag > 0, target + (wheel - target) * decay, target)
            acc += mean * (dur / total if total > 0 else 1.0)
        out[i] = ds[i] * steering_to_curvature(acc)
    return out


def fit_response(
    t: np.ndarray,
    steering: np.ndarray,
    ds: np.ndarray,
    yaw: np.ndarray,
    *,
    delays: np.ndarray | None = None,
    lags: np.ndarray | None = None,
    gains: np.ndarray | None = None,
) -> dict:
    """Delay, lag and gain that best turn the logged ``steering`` into the measured
    ``yaw`` per interval (grid search, least squares over the measured intervals).

    Returns ``{"response": CarResponse, "rms": ..., "r2": ..., "bicycle_rms": ...,
    "bicycle_r2": ..., "intervals": n}``: the rms error in radians per interval and
    the share of the measured turning's variance explained, for the fit and for the
    plain bicycle.
    """
    delays = np.arange(0.0, 0.21, 0.02) if delays is None else np.asarray(delays)
    lags = np.arange(0.0, 0.31, 0.02) if lags is None else np.asarray(lags)
    gains = np.arange(0.4, 1.41, 0.05) if gains is None else np.asarray(gains)
    t = np.asarray(t, dtype=np.float64)
    steering = np.asarray(steering, dtype=np.float64)
    ds = np.asarray(ds, dtype=np.float64)
    yaw = np.asarray(yaw, dtype=np.float64)
    ok = np.isfinite(yaw) & (ds > 0.05)
    if ok.sum() < 20:
        raise ValueError(f"need at least 20 measured intervals to fit; got {int(ok.sum())}")
    var = float(np.var(yaw[ok]))
    best = None
    for d in delays:
        pred = _grid_yaw(t, steering, ds, float(d), lags, gains)
        mse = np.mean((pred - yaw[:, None, None])[ok] ** 2, axis=0)
        li, gi = np.unravel_index(int(np.argmin(mse)), mse.shape)
        if best is None or mse[li, gi] < best[0]:
            fitted = CarResponse(
                round(float(d), 3), round(float(lags[li]), 3), round(float(gains[gi]), 3)
            )
            best = (float(mse[li, gi]), fitted)
    mse, resp = best
    bike = float(np.mean((ds * steering_to_curvature(steering[:-1]) - yaw)[ok] ** 2))
    return {
        "response": resp,
        "rms": math.sqrt(mse),
        "r2": 1.0 - mse / var if var > 0 else math.nan,
        "bicycle_rms": math.sqrt(bike),
        "bicycle_r2": 1.0 - bike / var if var > 0 else math.nan,
        "intervals": int(ok.sum()),
    }
