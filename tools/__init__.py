"""The simulator's side and the harnesses around the drive server, none of them the server.

- :mod:`tools.simclient` (``python -m tools.simclient LOG``): a client that speaks the
  Udacity simulator's protocol byte for byte (:class:`tools.simclient.SimulatorClient`,
  :func:`tools.simclient.replay`): one connection in :mod:`tools.simconnection`, the
  messages it sends and its strictness in :mod:`tools.simwire`, both re-exported by
  :mod:`tools.simclient`; the closed loop's ``--via-server`` policy, the drive tests and
  the benchmarks drive a server with it.
- :mod:`tools.process`: a drive server run as a child process (end-to-end tests,
  benchmarks).
- :mod:`tools.browser`: headless Chromium on the dashboard (the browser test, the soak
  benchmark).
- :mod:`tools.video`: the mp4 of a drive.py recording (``python video.py``).

Nothing here is imported by the server (:mod:`drive`); submodules are imported on use.
"""
