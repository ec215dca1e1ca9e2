"""What a trained encoder learned: 2-D maps of the test set's latent codes, an
interpolation between two test images, and how good the frozen latent is as a feature
(k-nearest-neighbour and linear-probe accuracy). scikit-learn does the maps and probes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .data import CLASSES, FashionMNIST, load_fashion_mnist, make_splits
from .files import read_json, write_json
from .images import LoadedRun
from .training import to_inputs

FIT_IMAGES = 10_000  # training images the probes are fitted on
MAP_IMAGES = 2_000   # test images on the t-SNE map


@torch.inference_mode()
def _embed(run: LoadedRun, images: torch.Tensor) -> np.ndarray:
    cpu = torch.device("cpu")
    out = [run.model.embed(to_inputs(images[i:i + 500], cpu)).float() for i in range(0, len(images), 500)]
    return torch.cat(out).numpy()


def feature_scores(train_z, train_y, test_z, test_y) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from .baselines import fit_quietly
    knn = KNeighborsClassifier(n_neighbors=5).fit(train_z, train_y)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    converged = fit_quietly(probe, train_z, train_y)
    return {"knn_acc": float(knn.score(test_z, test_y)), "linear_probe_acc": float(probe.score(test_z, test_y)),
            "linear_probe_converged": converged}


def explore(run_dir: str | Path, out: str | Path | None = None, data: FashionMNIST | None = None,
            data_dir: str | None = None, verify: bool = True, tsne: bool = True) -> dict:
    from .report import _plt, _save
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    run = LoadedRun(run_dir)
    out = Path(out) if out else run_dir / "explore"
    cfg = read_json(run_dir / "config.json", "run settings")
    data = data or load_fashion_mnist(data_dir, verify)
    s = make_splits(data, cfg["train"]["val"])
    train_z, test_z = _embed(run, s.train_x[:FIT_IMAGES]), _embed(run, s.test_x)
    train_y, test_y = s.train_y[:FIT_IMAGES].numpy(), s.test_y.numpy()
    result = {"run": str(run_dir), "latent_dim": int(train_z.shape[1]), "fit_images": len(train_z),
              "test_images": len(test_z), **feature_scores(train_z, train_y, test_z, test_y)}

    from sklearn.decomposition import PCA
    plt = _plt()
    maps = [("pca", PCA(n_components=2).fit_transform(test_z[:MAP_IMAGES]))]
    if tsne:
        from sklearn.manifold import TSNE
        maps.append(("tsne", TSNE(n_components=2, init="pca", random_state=0,
                                  perplexity=30).fit_transform(test_z[:MAP_IMAGES])))
    figures = []
    for name, xy in maps:
        fig, ax = plt.subplots(figsize=(6.5, 5))
        for c in range(10):
            pick = test_y[:MAP_IMAGES] == c
            ax.scatter(xy[pick, 0], xy[pick, 1], s=4, label=CLASSES[c], alpha=0.7)
        ax.set_title(f"test-set latent codes, {name.upper()} ({MAP_IMAGES:,} images)")
        ax.legend(fontsize=7, markerscale=3, loc="best")
        ax.set_xticks([])
        ax.set_yticks([])
        _save(fig, out / f"latent_{name}.png")
        figures.append(f"latent_{name}.png")

    if run.task == "autoencoder":  # interpolate between a T-shirt and a trouser in latent space
        a, b = (int((s.test_y == c).nonzero()[0]) for c in (0, 1))
        with torch.inference_mode():
            ends = run.model.encoder(to_inputs(s.test_x[[a, b]], torch.device("cpu")))
            steps = torch.linspace(0, 1, 9)
            z = torch.stack([(1 - w) * ends[0] + w * ends[1] for w in steps])
            images = run.model.decoder(z).float()
        fig, axes = plt.subplots(1, 9, figsize=(9, 1.3))
        for ax, im, w in zip(axes, images, steps):
            ax.imshow(im[0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{w:.2f}", fontsize=7)
            ax.axis("off")
        _save(fig, out / "interpolation.png")
        figures.append("interpolation.png")
    result["figures"] = figures
    result["seconds"] = time.perf_counter() - t0
    write_json(out / "explore.json", result)
    return result
