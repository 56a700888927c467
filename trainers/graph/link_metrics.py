"""Ranking metrics of link prediction in NumPy: the ROC curve, its area, and average precision.

For scores ``s`` and 0/1 labels ``y`` (``P`` positives, ``N`` negatives), sorted by decreasing
score and cut at each distinct score ``t``: ``TP(t)`` and ``FP(t)`` count the positives and
negatives scored ``≥ t``.

- ROC curve: ``(FPR, TPR) = (FP / N, TP / P)`` from ``(0, 0)`` to ``(1, 1)``.
- ROC AUC: the trapezoidal area under it, which equals the probability that a random positive
  outscores a random negative, ties counting ½ (the Mann–Whitney statistic).
- Average precision: ``AP = Σ_t (R_t − R_{t−1}) · P_t`` with recall ``R_t = TP/P`` and
  precision ``P_t = TP / (TP + FP)`` (no interpolation; scikit-learn's definition).

Hand-written because scikit-learn, which has them, is not a seqgraph dependency; the tests check
them against hand-worked examples.
"""

import numpy as np

from keras_models.utils.errors import require


def _cumulative_counts(labels, scores):
    """``(TP, FP)`` at each distinct score, from the highest score down."""
    labels = np.asarray(labels, dtype=np.float64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    require(labels.shape == scores.shape, "labels and scores must have the same length")
    require(np.isfinite(scores).all(), "scores must be finite numbers")
    positives = labels.sum()
    require(0 < positives < len(labels), "ranking metrics need both positives and negatives")
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    ends = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # last index of each score
    true_positives = np.cumsum(labels)[ends]
    return true_positives, (ends + 1) - true_positives


def roc_curve(labels, scores):
    """``(fpr, tpr)`` arrays of the ROC curve, starting at ``(0, 0)`` and ending at ``(1, 1)``."""
    tp, fp = _cumulative_counts(labels, scores)
    return np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]]


def roc_auc(labels, scores):
    """Area under the ROC curve (trapezoids: ties count ½)."""
    fpr, tpr = roc_curve(labels, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def average_precision(labels, scores):
    """``Σ (R_t − R_{t−1}) P_t`` over the distinct scores ``t``, from the highest down."""
    tp, fp = _cumulative_counts(labels, scores)
    recall = np.r_[0.0, tp / tp[-1]]
    return float(np.sum(np.diff(recall) * tp / (tp + fp)))
