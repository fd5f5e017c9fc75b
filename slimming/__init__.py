"""Seed 004's conversion: a trained conventional CNN made depthwise-separable, layer by layer.

``python slim.py MODEL_OR_RUN`` replaces each KxK ``Conv2D`` (K >= 3) by a depthwise
KxK + pointwise 1x1 pair, initialised from the trained kernel (rank-1 SVD per input
channel, optionally refined by least squares on real activations), fine-tuned briefly
with the original network as teacher, and kept only if the whole model's validation
MSE stays within a tolerance of the original's.

- :mod:`slimming.factorize`: the numpy maths (SVD init, least-squares refit, errors);
- :mod:`slimming.convert`: finding the convolutions and rebuilding the Keras graph;
- :mod:`slimming.activations`: real input activations of one layer and its errors;
- :mod:`slimming.finetune`: layer-local and end-to-end distillation (keras only);
- :mod:`slimming.data`: the training and validation frames it uses, decoded once;
- :mod:`slimming.search`: the two sweeps and the acceptance rule;
- :mod:`slimming.report`: figures of the whole model, ``report.json``/``report.md``;
- :mod:`slimming.cli`: the command line.
"""
