"""The bottom layer: pieces every other package shares, importing nothing of the project.

Recordings (read and write), frames (shape, JPEG decode), run folders (create, resolve
"model file or run folder", config.json), output folders (the one overwrite guard) and the
small CLI helper live here once; ``tests/test_layers.py`` checks nothing here imports a
project package.
"""
