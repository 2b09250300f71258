import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from softvq import data, kmeans_torch, runner
from softvq.config import Config
from softvq.metrics import (
    cluster_accuracy,
    clustering_scores,
    kmeans_labels,
    linear_probe,
    nmi,
)


def test_permuted_labels_score_perfectly():
    y_true = np.array([0, 0, 1, 1, 2, 2, 3])
    y_pred = np.array([2, 2, 0, 0, 3, 3, 1])  # a relabelling of y_true
    assert cluster_accuracy(y_true, y_pred) == 1.0
    assert nmi(y_true, y_pred) == pytest.approx(1.0)


def test_accepts_torch_tensors():
    y_true = torch.tensor([0, 0, 1, 1])
    y_pred = torch.tensor([1, 1, 0, 0])
    assert cluster_accuracy(y_true, y_pred) == 1.0
    assert nmi(y_true, y_pred) == pytest.approx(1.0)


def test_partial_accuracy_by_hand():
    # Contingency (rows: true 0..2, cols: pred 0..2): [[0,2,0],[1,0,1],[0,0,2]].
    # Best one-to-one map: pred1->0 (2 right), pred2->2 (2 right), pred0->1 (1 right) = 5/6.
    assert cluster_accuracy([0, 0, 1, 1, 2, 2], [1, 1, 0, 2, 2, 2]) == pytest.approx(5 / 6)


def test_nmi_by_hand():
    # y_true = [0,0,1,1], y_pred = [0,0,0,1]
    # p(true) = (1/2, 1/2), p(pred) = (3/4, 1/4), joint: (0,0)=1/2, (1,0)=1/4, (1,1)=1/4.
    h_true = math.log(2)
    h_pred = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    mi = (
        0.5 * math.log(0.5 / (0.5 * 0.75))
        + 0.25 * math.log(0.25 / (0.5 * 0.75))
        + 0.25 * math.log(0.25 / (0.5 * 0.25))
    )
    expected = 2 * mi / (h_true + h_pred)
    assert nmi([0, 0, 1, 1], [0, 0, 0, 1]) == pytest.approx(expected)


def test_more_clusters_than_classes():
    # Only one cluster per class can be matched; the rest count as wrong.
    assert cluster_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == pytest.approx(0.5)
    assert cluster_accuracy([0, 0, 0, 1, 1, 1], [0, 0, 1, 2, 2, 2]) == pytest.approx(5 / 6)


def test_fewer_clusters_than_classes():
    assert cluster_accuracy([0, 0, 0, 1, 2], [0, 0, 0, 0, 0]) == pytest.approx(3 / 5)


@pytest.mark.parametrize(
    "y_true, y_pred",
    [
        ([[0, 1]], [0, 1]),  # 2-D labels
        ([0, 1, 1], [0, 1]),  # unequal lengths
        ([], []),  # empty
        ([0.0, 1.0], [0, 1]),  # float labels
    ],
)
def test_bad_labels_raise(y_true, y_pred):
    with pytest.raises(ValueError):
        cluster_accuracy(y_true, y_pred)
    with pytest.raises(ValueError):
        nmi(y_true, y_pred)


def _blobs(n_per_blob=50, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    y = np.repeat(np.arange(3), n_per_blob)
    z = centers[y] + rng.standard_normal((len(y), 2))
    return z.astype(np.float32), y


def test_kmeans_recovers_separated_blobs():
    z, y = _blobs()
    pred = kmeans_labels(z, n_clusters=3, n_init=5, seed=0)
    assert pred.shape == y.shape
    assert cluster_accuracy(y, pred) == 1.0


def test_clustering_scores_on_blobs():
    z, y = _blobs()
    scores = clustering_scores(torch.from_numpy(z), torch.from_numpy(y), n_init=5)
    assert scores == {"cluster_acc": 1.0, "nmi": pytest.approx(1.0)}


def test_collapsed_codes_score_without_a_warning():
    """Codes on fewer distinct points than clusters (a collapsed bottleneck) are scored; sklearn's warning about
    it would be a red block in every notebook that trains briefly."""
    z = np.repeat(np.eye(3, 8, dtype=np.float32), 20, axis=0)                 # 3 distinct points, 10 clusters
    y = np.repeat(np.arange(3), 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert clustering_scores(z, y, n_init=2)["cluster_acc"] == 1.0


def test_kmeans_rejects_bad_latents():
    with pytest.raises(ValueError, match="2-D"):
        kmeans_labels(np.zeros(10), n_clusters=2)
    with pytest.raises(ValueError, match="at least"):
        kmeans_labels(np.zeros((3, 2)), n_clusters=5)
    with pytest.raises(ValueError, match="length"):
        clustering_scores(np.zeros((4, 2)), np.array([0, 1, 0]))


def _linear_data(n, seed, weight):
    gen = torch.Generator().manual_seed(seed)
    z = 5 * torch.randn(n, weight.shape[0], generator=gen) + 3  # unstandardised on purpose
    return z, (z @ weight).argmax(1)  # labels from a linear rule: separable


def test_linear_probe_separable_data():
    weight = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    z_train, y_train = _linear_data(1000, 1, weight)
    z_test, y_test = _linear_data(500, 2, weight)
    assert linear_probe(z_train, y_train, z_test, y_test, epochs=100) > 0.95


def test_linear_probe_feature_constant_in_training_does_not_swamp_the_test():
    # Like a border pixel of MNIST: 0 on every training image, 1 on a few test images. The probe
    # must score those test images as if the pixel were not there (scale 1, not 1 / 0).
    weight = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    z_train, y_train = _linear_data(1000, 1, weight)
    z_test, y_test = _linear_data(500, 2, weight)
    z_train = torch.cat([z_train, torch.zeros(1000, 1)], 1)
    z_test = torch.cat([z_test, (torch.arange(500) % 2).float()[:, None]], 1)
    assert linear_probe(z_train, y_train, z_test, y_test, epochs=100) > 0.95


def test_linear_probe_random_labels_is_chance():
    rng = np.random.default_rng(0)
    z_train, z_test = rng.standard_normal((2000, 8)), rng.standard_normal((2000, 8))
    y_train, y_test = rng.integers(0, 4, 2000), rng.integers(0, 4, 2000)
    assert linear_probe(z_train, y_train, z_test, y_test) == pytest.approx(0.25, abs=0.05)


def test_linear_probe_rejects_bad_shapes():
    z, y = np.zeros((10, 3)), np.zeros(10, dtype=int)
    with pytest.raises(ValueError, match="width"):
        linear_probe(z, y, np.zeros((10, 4)), y)
    with pytest.raises(ValueError, match="length"):
        linear_probe(z, y[:5], z, y)
    with pytest.raises(ValueError, match="2-D"):
        linear_probe(z[:, 0], y, z, y)


TSNE = Path(__file__).resolve().parents[1] / "figures" / "data" / "figure4_tsne.npz"


def _agreement(z, y, seed=0):
    """Best inertia and clustering accuracy of the batched torch K-means against sklearn's (the CPU path). Both on
    one OpenMP thread: with the other core busy, two busy-waiting threads made sklearn 100x slower here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = KMeans(10, init="random", n_init=100, random_state=seed).fit(z)
        labels, inertia = kmeans_torch.kmeans(z, 10, n_init=100, seed=seed, device="cpu")
    finally:
        torch.set_num_threads(threads)
    return (inertia / reference.inertia_ - 1,
            100 * (cluster_accuracy(y, labels.numpy()) - cluster_accuracy(y, reference.labels_)))


@pytest.mark.parametrize("run", ["vqvae", "soft_vqvae"])
def test_torch_kmeans_agrees_with_sklearn_on_the_committed_latent_maps(run):
    """The committed t-SNE maps of two d = 60 runs' latents (first 1,000 points; those of the AE and VAE agree
    too, and so do all four at 2,000 points): the same best inertia within 0.1 % and the same clustering accuracy
    within 0.5 point."""
    maps = np.load(TSNE)
    inertia, accuracy = _agreement(maps[run][:1000], maps["labels"][:1000])
    assert abs(inertia) < 1e-3 and abs(accuracy) < 0.5


def test_torch_kmeans_finds_sklearns_inertia_on_mnist_pixels(mnist_root):
    """16 principal components of 1,000 MNIST test images: the same best inertia within 0.1 %. Their accuracy is
    not compared: on 2,000 such images sklearn's own seeds 0-3 reach 56.6-58.2 % at inertias 0.02 % apart."""
    x, y = data.load_dataset("mnist", "test", mnist_root)
    z = PCA(16, random_state=0).fit_transform(x[:1000].flatten(1).numpy())
    assert abs(_agreement(z, y[:1000].numpy())[0]) < 1e-3


def test_torch_kmeans_is_fixed_by_its_seed_and_recovers_blobs():
    z, y = _blobs()
    first, inertia = kmeans_torch.kmeans(z, 3, n_init=4, seed=1)
    again, same = kmeans_torch.kmeans(z, 3, n_init=4, seed=1)
    assert torch.equal(first, again) and inertia == same and cluster_accuracy(y, first.numpy()) == 1.0
    with pytest.raises(ValueError, match="N >= n_clusters"):
        kmeans_torch.kmeans(np.zeros((3, 2)), 5)


def test_the_kmeans_implementation_is_the_one_named_on_the_device_named(monkeypatch):
    z, y = _blobs()
    calls = []
    monkeypatch.setattr(kmeans_torch, "kmeans", lambda *a, **k: calls.append(k["device"]) or (torch.tensor(y), 0.0))
    assert cluster_accuracy(y, kmeans_labels(z, 3, n_init=5, kmeans="sklearn")) == 1.0 and not calls
    kmeans_labels(z, 3, n_init=5, kmeans="torch", device="cpu")
    assert calls == ["cpu"]
    with pytest.raises(ValueError, match="K-means implementation 'faiss'"):
        kmeans_labels(z, 3, kmeans="faiss")


@pytest.mark.parametrize("kmeans", ["sklearn", "torch"])
def test_a_run_is_scored_on_its_training_device_with_its_kmeans_and_says_so(mnist_root, tmp_path, monkeypatch,
                                                                           kmeans):
    """With CUDA present (patched here once training is over), a run trained on the CPU is still scored on the
    CPU, with the K-means its Config names, and its record says how."""
    train = runner.train

    def train_then_cuda_appears(*args, **kwargs):
        history = train(*args, **kwargs)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        return history
    monkeypatch.setattr(runner, "train", train_then_cuda_appears)
    used = []
    original = kmeans_torch.kmeans
    monkeypatch.setattr(kmeans_torch, "kmeans", lambda *a, **k: used.append(k["device"]) or original(*a, **k))
    config = Config(bottleneck="vae", d=8, iterations=5, train_size=200, eval_size=100, kmeans_n_init=2,
                    probe_iterations=5, kmeans=kmeans)
    [record] = runner.run_stack([config], mnist_root, "cpu", tmp_path, tmp_path, progress=False)
    assert record["evaluation"] == {"kmeans": kmeans, "device": "cpu", "n_init": 2, "probe_iterations": 5}
    assert record["data"] == {"name": "mnist", "source": "full"}
    assert used == ([torch.device("cpu")] if kmeans == "torch" else [])


def test_a_run_is_scored_in_strict_float32(mnist_root, tmp_path, monkeypatch):
    """cuDNN lets float32 convolutions use TF32 by default: the encoding that feeds the scores runs with TF32
    off, whatever the run trained in."""
    seen = []
    build = runner.build_stack

    def watched(configs, x):
        model = build(configs, x)
        model.encoder.register_forward_hook(lambda *_: seen.append((model.training, (
            torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision))))
        return model
    monkeypatch.setattr(runner, "build_stack", watched)
    config = Config(bottleneck="vae", d=8, iterations=2, train_size=200, eval_size=100, kmeans_n_init=2,
                    probe_iterations=5, precision="tf32")
    runner.run_stack([config], mnist_root, "cpu", tmp_path, tmp_path, progress=False)
    assert {flags for training, flags in seen if training} == {("tf32", "tf32")}
    assert {flags for training, flags in seen if not training} == {("ieee", "ieee")}


@pytest.mark.cuda
def test_kmeans_and_probe_on_the_gpu_match_the_cpu():
    z, y = _blobs()
    assert cluster_accuracy(y, kmeans_labels(z, 3, n_init=5, kmeans="torch", device="cuda")) == 1.0
    weight = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    z_train, y_train = _linear_data(1000, 1, weight)
    z_test, y_test = _linear_data(500, 2, weight)
    assert linear_probe(z_train, y_train, z_test, y_test, epochs=100, device="cuda") == pytest.approx(
        linear_probe(z_train, y_train, z_test, y_test, epochs=100, device="cpu"), abs=0.01)
