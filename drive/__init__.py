"""Driving the Udacity simulator: the drive server, and only the server.

- :class:`drive.server.DriveServer`: the socket.io server (simulator and modern
  clients), PI throttle, recording, latency logging.
- :func:`serving.load` -> :class:`serving.Predictor`, the runtime every command shares:
  a model file or run folder behind one ``predict(frame) -> float`` (LiteRT, ONNX
  Runtime or a compiled Keras call).
- :class:`drive.extras.ExtrasReader`, :class:`drive.quality.DrivingQuality`: the extra
  telemetry of the research builds (SelfOracle, TUM, udacity-gym) and its per-lap
  driving quality (sectors completed, |CTE|, OBEs, crashes).

The simulator-protocol client that drives the server as the simulator does, the
child-process and browser harnesses and the mp4 writer live in :mod:`tools`.

Submodules are imported on use: ``import drive`` stays cheap (no TensorFlow).
"""
