"""Simulator geometry and procedural data: the Udacity car's camera model, NVIDIA
view synthesis (:mod:`sim.camera`) and the demo road: a procedural track
(:mod:`sim.track`), its renderer (:mod:`sim.render`), a scripted driver
(:mod:`sim.driver`) and demo recordings in the simulator's format
(:mod:`sim.demo_recording`; ``python -m sim.demo_road OUT_DIR``)."""
