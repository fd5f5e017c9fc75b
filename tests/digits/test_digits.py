"""The digits experiment on a few hundred real MNIST digits, one epoch."""

import gzip

import numpy as np
import pytest

from digits import data
from digits.__main__ import main, run, table
from digits.nets import NETS

needs_mnist = pytest.mark.skipif(
    not (data.DEFAULT_DIR / data.IMAGES).is_file(), reason="../shared/data/mnist is absent"
)


def test_trainable_counts():
    """baseline: 416 + 12,832 + 131,328 + 512 + 2,570 = 147,658 (the seed's count).
    effnet: block1 1*32 + 3*32 + 3*32 + 2*32*64 + BN gamma/beta 2*(32*3 + 64) = 4,640;
    block2 64*64 + 3*64*2 + 2*64*128 + 2*(64*3 + 128) = 21,504; head 7*7*128*10 + 10 =
    62,730: 88,874 (the seed's 68,090 is not reproduced)."""
    from models.io import parameter_counts

    counts = {name: parameter_counts(build())["trainable"] for name, build in NETS.items()}
    assert counts == {"baseline": 147_658, "effnet": 88_874, "effnet-plus": 28_090}


def test_split_is_fixed_and_disjoint():
    images = np.zeros((10_000, 28, 28, 1), np.uint8)
    labels = np.arange(10_000)
    (_, y_tr), (_, y_te) = data.split(images, labels)
    assert (len(y_tr), len(y_te)) == (8_000, 2_000)
    assert not set(y_tr) & set(y_te)
    (_, again), _ = data.split(images, labels)
    np.testing.assert_array_equal(y_tr, again)


def test_bad_files_are_reported(tmp_path):
    with pytest.raises(data.DigitsDataError, match="not found"):
        data.load(tmp_path)
    for name in (data.IMAGES, data.LABELS):
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(b"\x00\x00\x00\x01" + bytes(20))
    with pytest.raises(data.DigitsDataError, match="expected IDX magic 2051"):
        data.load(tmp_path)


@needs_mnist
def test_loads_the_official_test_split():
    images, labels = data.load()
    assert images.shape == (10_000, 28, 28, 1) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


#: Test accuracy each net must pass after 4 epochs on 400 digits (chance is 0.1 on the
#: 100 held-out ones). Measured with seed 0: baseline 0.90, effnet 0.89, effnet-plus
#: 0.48; effnet-plus's global-average-pool head learns slowest (0.953 after 10 epochs
#: on 8,000 digits, docs/slimming.md). Even 0.3 is beyond chance by a wide margin.
LEARNED = {"baseline": 0.8, "effnet": 0.8, "effnet-plus": 0.3}


@needs_mnist
def test_every_net_learns_from_a_few_hundred_digits():
    results = run(4, limit=500, batch_size=32)
    assert [r.name for r in results] == list(NETS) == list(LEARNED)
    accuracy = {r.name: r.accuracy for r in results}
    assert all(accuracy[name] > bound for name, bound in LEARNED.items()), accuracy
    assert all(r.macs > 0 and r.train_s > 0 for r in results)
    assert "| baseline | 147,658 |" in table(results, n_train=400, n_test=100, epochs=4)


@needs_mnist
def test_cli(capsys):
    assert main(["--epochs", "1", "--limit", "100", "--nets", "baseline"]) == 0
    assert "train 80, test 20" in capsys.readouterr().out
