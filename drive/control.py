"""Throttle from speed: Udacity's PI controller, with output limits and anti-windup.

Udacity's ``drive.py`` uses ``SimplePIController(0.1, 0.002)`` with a 9 mph set
point, one update per telemetry (no time step: the gains are per frame). It has no
output limit: at start-up the error is 9 mph, the output 0.9+, and the integral keeps
growing while the car accelerates, so it overshoots. Here the output is clamped and
the integral stops growing while the output is saturated in the error's direction
(conditional integration), so it recovers as soon as the speed is reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Udacity's reference gains and set point (mph).
KP = 0.1
KI = 0.002
SET_SPEED = 9.0
#: Throttle limits: 0.5 keeps the car well below the 30 mph top speed on every
#: track (the jungle recording never uses more than 0.4); a negative throttle brakes,
#: and -0.3 is enough to hold the set speed downhill without locking the wheels.
THROTTLE_MIN = -0.3
THROTTLE_MAX = 0.5


@dataclass
class PIController:
    kp: float = KP
    ki: float = KI
    set_point: float = SET_SPEED
    out_min: float = THROTTLE_MIN
    out_max: float = THROTTLE_MAX
    integral: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if not self.out_min < self.out_max:
            raise ValueError(
                f"out_min must be < out_max. Received: out_min={self.out_min}, "
                f"out_max={self.out_max}"
            )
        if self.kp < 0 or self.ki < 0:
            raise ValueError(f"gains must be >= 0. Received: kp={self.kp}, ki={self.ki}")

    def update(self, measurement: float) -> float:
        """One control step: the throttle for the measured speed (mph)."""
        error = self.set_point - measurement
        candidate = self.integral + error
        output = self.kp * error + self.ki * candidate
        saturated_high = output > self.out_max and error > 0
        saturated_low = output < self.out_min and error < 0
        if not (saturated_high or saturated_low):
            self.integral = candidate
        output = self.kp * error + self.ki * self.integral
        return min(self.out_max, max(self.out_min, output))

    def reset(self) -> None:
        self.integral = 0.0
