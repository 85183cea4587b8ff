"""Classify synthetic cell images with a small CNN and write per-cell embeddings to AnnData.

Run it with::

    python -m mnnkit.nn.examples.cell_images [--out cells.h5ad] [--cells 1500] [--epochs 6]

The script draws two-channel crops (cytoplasm, nuclei) of three kinds of cells, on two "plates"
that differ in stain intensity, background and noise (a batch effect):

* ``round``: a near-circular cell with one nucleus;
* ``elongated``: a long ellipse at a random angle with one elongated nucleus;
* ``multinucleated``: a round cell with two to four small nuclei.

It trains a four-layer CNN (convolution, batch norm, ReLU, max pooling; global average pooling
and a dense layer) with Adam, prints the held-out accuracy (chance is 1/3; expect above 0.9),
and writes an ``.h5ad`` whose ``.obsm["X_cnn"]`` (and ``.X``) holds the 32-dimensional
embedding of every cell, with ``.obs`` columns ``shape``, ``plate``, ``split`` and
``predicted``: ready for ``mnnkit.correct`` with ``plate`` as the batch, PCA or a GMM.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import mnnkit.nn as mnn
from mnnkit._random import RngLike, as_generator

CLASSES = ("round", "elongated", "multinucleated")


def _ellipse(yy, xx, cy, cx, a, b, angle, sharpness):
    """Soft ellipse (1 inside, 0 outside) with semi-axes ``a`` (along ``angle``) and ``b``."""
    c, s = np.cos(angle), np.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return 1 / (1 + np.exp(np.clip((r - 1) * sharpness, -50, 50)))


def make_cells(n_cells: int = 1500, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw synthetic two-channel cell crops.

    Parameters
    ----------
    n_cells
        Number of cells (classes and plates balanced).
    size
        Height and width of each crop.
    seed
        Seed: the same seed gives the same images.

    Returns
    -------
    images : numpy.ndarray
        ``(n_cells, 2, size, size)`` float32: channel 0 cytoplasm, channel 1 nuclei.
    labels : numpy.ndarray
        ``(n_cells,)`` class index into :data:`CLASSES`.
    plates : numpy.ndarray
        ``(n_cells,)`` plate (batch) index, 0 or 1.
    """
    rng = as_generator(seed, "seed")
    labels = np.arange(n_cells) % 3
    plates = (np.arange(n_cells) // 3) % 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    scale = size / 32
    images = np.empty((n_cells, 2, size, size), dtype=np.float32)
    for i, (label, plate) in enumerate(zip(labels, plates, strict=True)):
        cy, cx = size / 2 + rng.uniform(-3, 3, 2) * scale
        angle = rng.uniform(0, np.pi)
        if label == 1:  # elongated
            a, b = rng.uniform(10, 13) * scale, rng.uniform(3.5, 5) * scale
            nuclei = [(cy, cx, 3.0 * scale, 1.8 * scale)]
        else:
            a = rng.uniform(7.5, 10) * scale
            b = a * rng.uniform(0.85, 1.0)
            if label == 0:
                r = rng.uniform(2.6, 3.4) * scale
                nuclei = [(cy, cx, r, r)]
            else:
                nuclei = []
                for k in range(rng.integers(2, 5)):
                    phi = angle + 2 * np.pi * k / 4 + rng.uniform(-0.3, 0.3)
                    d = rng.uniform(0.35, 0.5) * a
                    r = rng.uniform(1.7, 2.3) * scale
                    nuclei.append((cy + d * np.sin(phi), cx + d * np.cos(phi), r, r))
        cyto = _ellipse(yy, xx, cy, cx, a, b, angle, 6.0)
        nuc = np.zeros_like(cyto)
        for ny, nx, na, nb in nuclei:
            nuc = np.maximum(nuc, _ellipse(yy, xx, ny, nx, na, nb, angle, 5.0))
        texture = 1 + 0.15 * rng.standard_normal(cyto.shape)
        # plate effect: stain gains, background and noise differ between the two plates
        gain_c, gain_n, background, noise = ((1.0, 1.0, 0.05, 0.08), (1.5, 0.7, 0.2, 0.12))[plate]
        images[i, 0] = gain_c * cyto * texture * rng.uniform(0.7, 1.0) + background
        images[i, 1] = gain_n * nuc * rng.uniform(0.8, 1.2) + background / 2
        images[i] += noise * rng.standard_normal((2, size, size))
    return images, labels, plates


def build_model(rng: RngLike = 0) -> mnn.Sequential:
    """Return the small CNN: three conv blocks, global average pooling (the embedding), a dense layer.

    ``rng`` is the randomness of the initial weights: an int seed >= 0 (same seed, same result), a
    :class:`numpy.random.Generator` (used as given: its stream advances) or None (fresh entropy from the
    operating system: a different result on every call).
    """
    gen = as_generator(rng)
    model = mnn.Sequential(
        mnn.Conv2d(2, 8, 3, padding=1, rng=gen),
        mnn.BatchNorm2d(8),
        mnn.ReLU(),
        mnn.MaxPool2d(2),
        mnn.Conv2d(8, 16, 3, padding=1, rng=gen),
        mnn.BatchNorm2d(16),
        mnn.ReLU(),
        mnn.MaxPool2d(2),
        mnn.Conv2d(16, 32, 3, padding=1, rng=gen),
        mnn.BatchNorm2d(32),
        mnn.ReLU(),
        mnn.GlobalAvgPool2d(),
        mnn.Linear(32, len(CLASSES), init="glorot_uniform", rng=gen),
    )
    model[0].input_grad = False  # nothing upstream of the first layer needs its input gradient
    return model


def recalibrate_batch_norm(model: mnn.Sequential, images: np.ndarray, batch: int = 128) -> None:
    """Set every batch norm's running statistics to their average over ``images`` (in batches).

    During training the running statistics are an exponential average over batches whose network
    kept changing; one pass with the final weights gives evaluation mode the statistics the
    trained network actually produces ("precise batch norm"). Weights are not changed.
    """
    norms = [layer for layer in model.layers if isinstance(layer, mnn.BatchNorm2d)]
    saved = [bn.momentum for bn in norms]
    for bn in norms:
        bn.running_mean[...] = 0
        bn.running_var[...] = 1
    model.train()
    for k, start in enumerate(range(0, len(images) - 1, batch)):
        for bn in norms:
            bn.momentum = 1 / (k + 1)  # cumulative average over the batches
        model.forward(images[start : start + batch])
    for bn, momentum in zip(norms, saved, strict=True):
        bn.momentum = momentum


def _predict(model: mnn.Sequential, images: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Return (logits, embeddings) in evaluation mode."""
    model.eval()
    logits, embeddings = [], []
    for start in range(0, len(images), batch):
        h = images[start : start + batch]
        for layer in model.layers[:-1]:
            h = layer.forward(h)
        embeddings.append(h)
        logits.append(model.layers[-1].forward(h))
    model.train()
    return np.concatenate(logits), np.concatenate(embeddings)


def run(
    n_cells: int = 1500,
    epochs: int = 6,
    size: int = 32,
    batch_size: int = 32,
    lr: float = 0.003,
    seed: int = 0,
    out: str | Path | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Draw the cells, train the CNN, evaluate it and write the embeddings.

    Parameters
    ----------
    n_cells, size
        Number and crop size of the synthetic cells.
    epochs, batch_size, lr
        Training schedule (Adam).
    seed
        Seed of the images, the weights and the shuffling.
    out
        Path of the ``.h5ad`` to write (default: a new file in a temporary directory).
    verbose
        Print progress and the result.

    Returns
    -------
    dict
        ``accuracy`` (held-out), ``train_accuracy``, ``seconds``, ``path`` and ``adata``.
    """
    import anndata as ad
    import pandas as pd

    t0 = time.perf_counter()
    images, labels, plates = make_cells(n_cells, size, seed)
    rng = as_generator(seed, "seed")
    order = rng.permutation(n_cells)
    n_test = n_cells // 5
    test, train = order[:n_test], order[n_test:]
    mean = images[train].mean(axis=(0, 2, 3), keepdims=True)
    std = images[train].std(axis=(0, 2, 3), keepdims=True)
    x = ((images - mean) / std).astype(np.float32)

    model = build_model(rng)
    optimizer = mnn.Adam(model.parameters(), lr=lr)
    for epoch in range(epochs):
        shuffled = rng.permutation(train)
        losses = []
        for start in range(0, len(shuffled), batch_size):
            idx = shuffled[start : start + batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            optimizer.zero_grad()
            logits = model.forward(x[idx])
            losses.append(mnn.cross_entropy(logits, labels[idx]))
            model.backward(mnn.cross_entropy_backward(logits, labels[idx]))
            optimizer.step()
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}: training loss {np.mean(losses):.3f}")

    recalibrate_batch_norm(model, x[train])
    logits, embedding = _predict(model, x)
    predicted = logits.argmax(axis=1)
    accuracy = float((predicted[test] == labels[test]).mean())
    train_accuracy = float((predicted[train] == labels[train]).mean())

    split = np.where(np.isin(np.arange(n_cells), test), "test", "train")
    obs = pd.DataFrame(
        {
            "shape": pd.Categorical.from_codes(labels, CLASSES),
            "plate": pd.Categorical.from_codes(plates, ["plate1", "plate2"]),
            "split": pd.Categorical(split),
            "predicted": pd.Categorical.from_codes(predicted, CLASSES),
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"cnn{k}" for k in range(embedding.shape[1])])
    adata = ad.AnnData(X=embedding.astype(np.float32), obs=obs, var=var)
    adata.obsm["X_cnn"] = embedding.astype(np.float32)
    adata.uns["cnn_example"] = {"test_accuracy": accuracy, "epochs": epochs, "seed": seed}
    path = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="mnnkit_cells_")) / "cells.h5ad"
    path.parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(path)
    seconds = time.perf_counter() - t0
    if verbose:
        chance = 1 / len(CLASSES)
        print(f"held-out accuracy {accuracy:.3f} on {n_test} cells (chance {chance:.3f}); train {train_accuracy:.3f}")
        print(f"wrote {n_cells} x {embedding.shape[1]} embeddings to {path} (.obsm['X_cnn']; batch key 'plate')")
        print(f"done in {seconds:.1f} s")
    return {"accuracy": accuracy, "train_accuracy": train_accuracy, "seconds": seconds, "path": path, "adata": adata}


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="path of the .h5ad to write (default: a temporary directory)")
    parser.add_argument("--cells", type=int, default=1500, help="number of cells")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run(n_cells=args.cells, epochs=args.epochs, seed=args.seed, out=args.out)


if __name__ == "__main__":
    main()
