"""K-means with many restarts as one batched torch computation, for the GPU (sklearn's KMeans is the CPU path).

All R restarts run at once: the centres of every restart are one tensor (R, k, d), and each Lloyd (1982)
iteration is two matrix products, one for the distances of all N points to all R k centres (N, R k) and one for
the new centres. The initial centres come from
k-means++ (Arthur & Vassilvitskii 2007: each further centre is a data point drawn with probability
proportional to its squared distance to the nearest centre chosen so far). The restart with the lowest inertia
(within-cluster sum of squares) is kept, as sklearn does. The data are centred first (as sklearn does), so
that the expanded distances |x|^2 - 2 x.c + |c|^2 lose little to float32 cancellation.

10,000 x 256 latents, 100 restarts, 10 clusters: one iteration is ~1 GFLOP (a millisecond on a GPU),
with (N, R, k) float32 tensors of 40 MB.
"""
from __future__ import annotations

import torch

CHECK_EVERY = 10            # Lloyd iterations between two convergence checks (each one waits for the device)


def squared_distances(x: torch.Tensor, centres: torch.Tensor, x_sq: torch.Tensor) -> torch.Tensor:
    """||x_n - c_rj||^2: x (N, d), centres (R, k, d), x_sq (N,) = |x_n|^2 -> (N, R, k), clamped at 0; one matrix
    product (N, d) x (d, R k)."""
    r, k, d = centres.shape
    cross = (x @ centres.reshape(r * k, d).T).view(-1, r, k)
    return (x_sq[:, None, None] - 2 * cross).add_(centres.pow(2).sum(-1)).clamp_min_(0)


def kmeans_plus_plus(x: torch.Tensor, x_sq: torch.Tensor, n_clusters: int, n_init: int,
                     generator: torch.Generator) -> torch.Tensor:
    """k-means++ initial centres of `n_init` independent restarts: (R, k, d)."""
    n = len(x)
    first = torch.randint(n, (n_init,), generator=generator, device=x.device)
    centres = [x[first]]                                                # k tensors (R, d)
    nearest = squared_distances(x, centres[0][:, None], x_sq)[..., 0].T   # (R, N)
    for _ in range(1, n_clusters):
        # a restart whose points all coincide with its centres draws uniformly
        weights = torch.where(nearest.sum(1, keepdim=True) > 0, nearest, torch.ones_like(nearest))
        chosen = torch.multinomial(weights, 1, generator=generator)[:, 0]
        centres.append(x[chosen])
        nearest = torch.minimum(nearest, squared_distances(x, centres[-1][:, None], x_sq)[..., 0].T)
    return torch.stack(centres, dim=1)


def kmeans(z, n_clusters: int = 10, n_init: int = 100, max_iter: int = 300, tol: float = 1e-4, seed: int = 0,
           device: torch.device | str | None = None) -> tuple[torch.Tensor, float]:
    """Cluster z (N, d) into `n_clusters` with `n_init` k-means++ restarts run together; returns the cluster ids
    (N,) of the restart with the lowest inertia (on the CPU) and that inertia.

    Lloyd iterations run until every restart has converged as sklearn defines it (no assignment changed, or
    the centres moved by at most `tol` times the data's mean variance, squared distances summed over the
    centres), or `max_iter` (sklearn's defaults: 300, 1e-4). A cluster that loses all its points keeps its
    centre. `seed` fixes every restart; `device` (default: z's) is where it runs, in float32.
    """
    x = torch.as_tensor(z, dtype=torch.float32, device=device)
    if x.ndim != 2 or len(x) < n_clusters:
        raise ValueError(f"need latents (N, d) with N >= n_clusters={n_clusters}, got shape {tuple(x.shape)}")
    x = x - x.mean(0)
    x_sq = x.pow(2).sum(1)
    tol = tol * float(x.var(0, correction=0).mean())
    generator = torch.Generator(x.device).manual_seed(seed)
    centres = kmeans_plus_plus(x, x_sq, n_clusters, n_init, generator)            # (R, k, d)
    labels = squared_distances(x, centres, x_sq).argmin(-1)                       # (N, R)
    for it in range(1, max_iter + 1):
        one_hot = torch.zeros(len(x), n_init, n_clusters, device=x.device).scatter_(-1, labels[..., None], 1.0)
        counts = one_hot.sum(0)[..., None]                                        # (R, k, 1)
        sums = (one_hot.view(len(x), -1).T @ x).view_as(centres)                  # (R, k, d)
        moved = torch.where(counts > 0, sums / counts.clamp_min(1), centres)
        shift, centres = (moved - centres).pow(2).sum((1, 2)), moved              # (R,)
        new = squared_distances(x, centres, x_sq).argmin(-1)
        converged, labels = (new == labels).all(0) | (shift <= tol), new
        if it % CHECK_EVERY == 0 and bool(converged.all()):
            break
    inertia = squared_distances(x, centres, x_sq).gather(-1, labels[..., None])[..., 0].sum(0)   # (R,)
    best = int(inertia.argmin())
    return labels[:, best].cpu(), float(inertia[best])
