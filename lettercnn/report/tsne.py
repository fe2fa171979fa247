"""t-SNE maps of the test set's features (scikit-learn, imported inside the functions).

t-SNE costs O(n log n) per iteration with a large constant (about 10 s for 1,000
points on 2 CPU cores), so the report maps at most ``samples`` test images, picked at
random without replacement by a fixed seed (all of them when there are fewer).
"""

from __future__ import annotations

import numpy as np

# sklearn's default perplexity; it must stay below the number of points, so small sets
# use (n - 1) / 3, the largest value the neighbour search (3 x perplexity) allows.
PERPLEXITY = 30.0
# Fixes the subsample and t-SNE's own randomness: the same run gives the same maps.
TSNE_SEED = 0
# t-SNE needs a few points to place at all.
MIN_POINTS = 4
# A letter's points are split into two labelled clusters only when each part is this
# big (a share of the letter's points, and a count) and the parts are this far apart (in
# units of their mean radius); 2-means converges in a few steps on a few dozen points.
MIN_CLUSTER_SHARE = 0.15
MIN_CLUSTER_POINTS = 3
SPLIT_DISTANCE = 3.0
KMEANS_STEPS = 10
# Below this many points the exact O(n^2) method is faster than Barnes-Hut, whose fixed
# cost is seconds (measured on 2 cores: 20 points 0.3 s exact, 3.2 s Barnes-Hut).
EXACT_BELOW = 100


def pick_samples(count: int, samples: int, seed: int = TSNE_SEED) -> np.ndarray:
    """Indices of the points to map: all of ``count`` if ``samples >= count``, else a random subset.

    Args:
        count: points available.
        samples: points wanted.
        seed: seed of the subset.

    Returns:
        Sorted int64 indices.

    Raises:
        ValueError: ``samples`` below :data:`MIN_POINTS`, or fewer than that available.
    """
    if samples < MIN_POINTS:
        raise ValueError(f"t-SNE needs at least {MIN_POINTS} samples, got {samples}")
    if count < MIN_POINTS:
        raise ValueError(f"t-SNE needs at least {MIN_POINTS} test images, the test set has {count}")
    if samples >= count:
        return np.arange(count, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(count, size=samples, replace=False)).astype(np.int64)


def perplexity_for(points: int) -> float:
    """The perplexity used for ``points`` points: :data:`PERPLEXITY`, or less for a small set."""
    return min(PERPLEXITY, (points - 1) / 3)


def tsne_2d(features: np.ndarray, seed: int = TSNE_SEED) -> np.ndarray:
    """Map ``(n, d)`` features to ``(n, 2)`` with t-SNE (PCA start, automatic learning rate).

    Barnes-Hut for :data:`EXACT_BELOW` points or more, the exact method below.

    Args:
        features: one row per point, n >= :data:`MIN_POINTS`.
        seed: t-SNE's random state.

    Returns:
        float32 ``(n, 2)``.
    """
    from sklearn.manifold import TSNE

    points = np.asarray(features, dtype=np.float32)
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity_for(len(points)),
        init="pca",
        learning_rate="auto",
        method="exact" if len(points) < EXACT_BELOW else "barnes_hut",
        random_state=seed,
    )
    return tsne.fit_transform(points).astype(np.float32)


def label_positions(points: np.ndarray) -> list[np.ndarray]:
    """Where to write one letter on a t-SNE map: the centre of each of its clusters.

    A letter often forms two clusters (upper and lower case); the median of all its
    points would then fall in the empty space between them. The points are split in two
    by 2-means (started from a cut at the median along the points' main axis, so one
    stray point cannot take a cluster of its own); the split is kept when both parts
    hold at least :data:`MIN_CLUSTER_SHARE` of the points (and :data:`MIN_CLUSTER_POINTS`)
    and their centres lie more than
    :data:`SPLIT_DISTANCE` times the parts' mean radius apart.

    Args:
        points: ``(n, 2)``, one letter's points.

    Returns:
        One or two ``(2,)`` positions (medians of the clusters).
    """
    whole = [np.median(points, axis=0)]
    if len(points) < 2 * MIN_CLUSTER_POINTS:
        return whole
    centred = points - whole[0]
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]  # (2,) main direction
    projection = centred @ axis  # (n,)
    nearest = (projection > np.median(projection)).astype(np.int64)  # (n,) 0 or 1
    for _ in range(KMEANS_STEPS):
        if nearest.min() == nearest.max():
            return whole
        centres = np.stack([np.median(points[nearest == k], axis=0) for k in (0, 1)])  # (2, 2)
        nearest = np.linalg.norm(points[:, None] - centres[None], axis=2).argmin(axis=1)  # (n,)
    if nearest.min() == nearest.max():
        return whole
    parts = [points[nearest == k] for k in (0, 1)]
    centres = np.stack([np.median(part, axis=0) for part in parts])
    radius = np.mean([np.linalg.norm(part - centre, axis=1).mean() for part, centre in zip(parts, centres)])
    small = min(len(part) for part in parts) < max(MIN_CLUSTER_POINTS, MIN_CLUSTER_SHARE * len(points))
    if small or np.linalg.norm(centres[0] - centres[1]) <= SPLIT_DISTANCE * radius:
        return whole
    return list(centres)
