"""Driving the Udacity simulator: server, simulator-protocol client, model runtimes.

- :class:`drive.server.DriveServer`: the socket.io server (simulator and modern
  clients), PI throttle, recording, latency logging.
- :func:`serving.load` -> :class:`serving.Predictor`, the runtime every command shares:
  a model file or run folder behind one ``predict(frame) -> float`` (LiteRT, ONNX
  Runtime or a compiled Keras call).
- :class:`drive.simclient.SimulatorClient`, :func:`drive.simclient.replay`: a client
  that speaks the simulator's protocol byte for byte.
- :class:`drive.extras.ExtrasReader`, :class:`drive.quality.DrivingQuality`: the extra
  telemetry of the research builds (SelfOracle, TUM, udacity-gym) and its per-lap
  driving quality (sectors completed, |CTE|, OBEs, crashes).

Submodules are imported on use: ``import drive`` stays cheap (no TensorFlow).
"""
