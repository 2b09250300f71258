"""Evaluation of latent representations: clustering accuracy, NMI and a linear probe.

Inputs may be numpy arrays or torch tensors on any device; they are converted at the
boundary. Labels must be 1-D integer arrays, latents 2-D (N, D) arrays.

K-means and the probe run where the caller says: `kmeans` names the K-means implementation, "sklearn"
(random starts, on the CPU; the paper's, and the reference) or "torch" (`softvq.kmeans_torch`: k-means++
starts, all restarts as one batched computation, on `device`; checked against sklearn in
tests/test_metrics.py); the probe runs on `device` (default: the CPU).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from . import kmeans_torch
from .config import KMEANS


def _numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _labels(y, name: str) -> np.ndarray:
    y = _numpy(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D labels, got shape {y.shape}")
    if y.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {y.dtype}")
    return y


def _label_pair(y_true, y_pred, names=("y_true", "y_pred")) -> tuple[np.ndarray, np.ndarray]:
    a, b = _labels(y_true, names[0]), _labels(y_pred, names[1])
    if len(a) != len(b):
        raise ValueError(f"{names[0]} and {names[1]} differ in length: {len(a)} != {len(b)}")
    return a, b


def _latents(z, name: str) -> np.ndarray:
    z = _numpy(z)
    if z.ndim != 2:
        raise ValueError(f"{name} must be 2-D latents (N, D), got shape {z.shape}")
    return z


def cluster_accuracy(y_true, y_pred) -> float:
    """Unsupervised clustering accuracy in [0, 1].

    Cluster ids are matched one-to-one to labels so that the number of correctly
    assigned samples is maximal (Hungarian algorithm, ``linear_sum_assignment`` on the
    (classes, clusters) contingency matrix). With more clusters than classes the
    unmatched clusters count as wrong; with fewer, the unmatched classes do.
    """
    y_true, y_pred = _label_pair(y_true, y_pred)
    counts = contingency_matrix(y_true, y_pred)  # (n_classes, n_clusters)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(y_true))


def nmi(y_true, y_pred) -> float:
    """Normalised mutual information ``I(T; P) / ((H(T) + H(P)) / 2)`` in [0, 1]."""
    y_true, y_pred = _label_pair(y_true, y_pred)
    return float(normalized_mutual_info_score(y_true, y_pred, average_method="arithmetic"))


def kmeans_labels(z, n_clusters: int = 10, n_init: int = 100, seed: int = 0, kmeans: str = "sklearn",
                  device="cpu") -> np.ndarray:
    """Cluster latents ``z`` (N, D) with K-means; returns cluster ids (N,).

    As in the paper: ``n_init`` runs from random initial centres; the run with the lowest inertia
    (within-cluster sum of squares) is kept. ``seed`` fixes all runs. ``kmeans="sklearn"`` is sklearn's
    KMeans with ``init="random"`` (centres drawn from the data points), on the CPU whatever ``device``;
    ``"torch"`` the batched `softvq.kmeans_torch.kmeans` on ``device`` (k-means++ starts, all runs at once),
    which finds the same best inertia to 0.1 %.

    On the idle 2-core dev CPU, 10,000 x 64 latents with n_init=100 take about 2.5 s
    (10,000 x 256: about 6 s). If another process keeps a core busy, OpenMP's busy-waiting
    threads make this 20-40x slower; start Python with ``OMP_WAIT_POLICY=passive`` (or
    ``OMP_NUM_THREADS=1``) then. Setting it after ``import torch`` has no effect.
    """
    if kmeans not in KMEANS:
        raise ValueError(f"unknown K-means implementation {kmeans!r}; expected one of {KMEANS}")
    z = _latents(z, "z")
    if len(z) < n_clusters:
        raise ValueError(f"need at least n_clusters={n_clusters} samples, got {len(z)}")
    if kmeans == "torch":
        return kmeans_torch.kmeans(z, n_clusters, n_init, seed=seed, device=device)[0].numpy()
    km = KMeans(n_clusters=n_clusters, init="random", n_init=n_init, random_state=seed)
    with warnings.catch_warnings():     # codes with fewer distinct points than clusters (a collapse) score as such
        warnings.filterwarnings("ignore", "Number of distinct clusters", ConvergenceWarning)
        return km.fit_predict(z)


def clustering_scores(z_test, y_test, n_init: int = 100, seed: int = 0, kmeans: str = "sklearn",
                      device="cpu") -> dict[str, float]:
    """K-means clustering accuracy and NMI of latents against labels.

    Following the paper, K-means (``num classes`` clusters, ``n_init`` random
    initialisations) is fitted on the test-set latents ``z_e`` and scored on the same
    test set; there is no train/test split for the clustering. ``kmeans``, ``device``: see ``kmeans_labels``.

    Returns ``{"cluster_acc": ..., "nmi": ...}``.
    """
    z_test = _latents(z_test, "z_test")
    y_test = _labels(y_test, "y_test")
    if len(z_test) != len(y_test):
        raise ValueError(f"z_test and y_test differ in length: {len(z_test)} != {len(y_test)}")
    pred = kmeans_labels(z_test, n_clusters=len(np.unique(y_test)), n_init=n_init, seed=seed, kmeans=kmeans,
                         device=device)
    return {"cluster_acc": cluster_accuracy(y_test, pred), "nmi": nmi(y_test, pred)}


def linear_probe(
    z_train, y_train, z_test, y_test, epochs: int = 500, seed: int = 0, device="cpu"
) -> float:
    """Test accuracy of a linear softmax classifier trained on frozen latents.

    The classifier is one fully connected layer + softmax (multinomial logistic
    regression, no regularisation), fitted on the training latents and evaluated on the
    test latents. Features are standardised with the training-set mean and std; a feature
    constant on the training latents is only centred (scale 1), so that a test value off
    that constant is not blown up by a vanishing std. It is
    trained full-batch with L-BFGS (strong Wolfe line search) for at most ``epochs``
    iterations, each one or more passes over the whole training set; it usually stops
    earlier, once the loss stops changing. The problem is convex, so ``seed`` (which
    sets the small random initial weights) hardly matters.

    Measured on the idle 2-core dev CPU with 60,000 training latents (random features of
    MNIST, 10 classes): about 1 s for 64 features and 4 s for 256 features, with the same
    accuracy as sklearn's ``LogisticRegression(lbfgs)`` (to 0.1 %) at 3-4x less time.
    Separable data never converges and runs all 500 iterations: about 2 s (64) and
    6 s (256), measured with the second core busy. See ``kmeans_labels`` about a busy CPU.

    Args:
        z_train, z_test: latents (N, D) and (M, D).
        y_train, y_test: integer labels 0..K-1, shapes (N,) and (M,).
        epochs: maximum number of L-BFGS iterations.
        seed: seed of the initial weights.
        device: torch device to train on.

    Returns:
        Accuracy on the test latents, in [0, 1].
    """
    z_train, z_test = _latents(z_train, "z_train"), _latents(z_test, "z_test")
    y_train, y_test = _labels(y_train, "y_train"), _labels(y_test, "y_test")
    if len(z_train) != len(y_train) or len(z_test) != len(y_test):
        raise ValueError(
            f"latents and labels differ in length: z_train {len(z_train)} vs y_train {len(y_train)}, "
            f"z_test {len(z_test)} vs y_test {len(y_test)}"
        )
    if z_train.shape[1] != z_test.shape[1]:
        raise ValueError(f"z_train and z_test differ in width: {z_train.shape[1]} != {z_test.shape[1]}")
    if min(y_train.min(), y_test.min()) < 0:
        raise ValueError("labels must be non-negative class indices")

    x = torch.as_tensor(z_train, dtype=torch.float32, device=device)  # (N, D)
    xt = torch.as_tensor(z_test, dtype=torch.float32, device=device)  # (M, D)
    y = torch.as_tensor(y_train, dtype=torch.int64, device=device)  # (N,)
    yt = torch.as_tensor(y_test, dtype=torch.int64, device=device)  # (M,)
    mean, std = x.mean(0), x.std(0)
    std = torch.where((x == x[0]).all(0), torch.ones_like(std), std)  # a feature constant on z_train: scale 1
    x, xt = (x - mean) / std, (xt - mean) / std

    n_classes = int(max(y.max(), yt.max())) + 1
    gen = torch.Generator().manual_seed(seed)
    weight = (0.01 * torch.randn(x.shape[1], n_classes, generator=gen)).to(device).requires_grad_()  # (D, K)
    bias = torch.zeros(n_classes, device=device, requires_grad=True)  # (K,)
    opt = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=epochs, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-7, tolerance_change=1e-10,
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, y)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((xt @ weight + bias).argmax(1) == yt).float().mean())
