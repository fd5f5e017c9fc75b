"""Simulator geometry and procedural data: the Udacity car's camera model, NVIDIA
view synthesis (:mod:`sim.camera`) and a procedural road with a scripted driver
that writes demo recordings in the simulator's format (:mod:`sim.demo_road`)."""
