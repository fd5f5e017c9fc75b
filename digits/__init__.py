"""The seed's digits experiment (seed 000, section 4): baseline CNN vs EffNet on MNIST.

``python -m digits --epochs N`` trains three classifiers on a fixed 8,000 of the
official 10,000-image MNIST *test* split (the only MNIST on these machines,
../shared/data/mnist/README.md) and tests on the other 2,000:

- ``baseline``: 147,658 trainable parameters, the seed's count (:mod:`digits.nets`
  says how the architecture was found);
- ``effnet``: two of the project's EffNet blocks (:func:`models.blocks.effnet_block`);
- ``effnet-plus``: our improved EffNet (a 3x3 stem, corrected depthwise init,
  global-average-pool head).
"""
