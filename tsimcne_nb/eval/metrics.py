"""How good is a map?  The paper's metrics, in one place.

* :func:`knn_accuracy` -- kNN classification accuracy (k = 15) on a stratified
  9:1 train/test split of the embedded points (scikit-learn
  ``KNeighborsClassifier``), as in the paper's Table 2.
* :func:`silhouette` -- silhouette score of the embedding with the class labels
  (scikit-learn), exact up to ``max_exact`` points and a seeded stratified-sample
  estimate above that (exact silhouette is O(N^2): fine for 17k points, not for
  PCam's 327k), as in the paper's Table 3.
* :func:`linear_probe` -- linear evaluation of high-dimensional features
  (StandardScaler, then unpenalised multinomial logistic regression with the
  ``saga`` solver), as in the paper's Table 5.
* :func:`per_class_report` and :func:`confusion_table` -- which classes are mixed up.

numpy in, plain Python/pandas out.  Bad input raises
:class:`~tsimcne_nb.errors.DataError` with a message that says how to fix it.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np

from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.validation import check_embedding, check_labels_for_scoring, check_seed

__all__ = [
    "knn_accuracy",
    "silhouette",
    "evaluate",
    "linear_probe",
    "per_class_report",
    "confusion_table",
    "SILHOUETTE_SAMPLE_TOLERANCE",
]

#: Documented accuracy of the sampled silhouette estimate: with the defaults
#: (20 000 points per sample, 3 repeats) the estimate lies within this distance of
#: the exact score.  The per-point silhouette values have a standard deviation of
#: at most ~0.5, so the standard error of a 20k-point mean is ~0.004 and of the
#: 3-repeat average ~0.002; 0.01 leaves room for the small bias of computing the
#: intra/inter-class distances within the sample.  ``tests/test_evaluation.py``
#: checks a 25k-point case with a far smaller sample against the tolerance scaled
#: by sqrt(20000 / sample_size).
SILHOUETTE_SAMPLE_TOLERANCE = 0.01


# ---------------------------------------------------------------------- kNN
def _split(
    y: np.ndarray, test_size: float, random_state: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified train/test split; unstratified (with a warning) if impossible."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ConfigError(f"test_size must be a fraction in (0, 1); got {test_size!r}.")
    idx = np.arange(len(y))
    try:
        train, test = train_test_split(
            idx, test_size=test_size, stratify=y, random_state=random_state
        )
    except ValueError as exc:
        # a class with a single member (or more classes than test points) cannot be stratified
        warnings.warn(
            f"a stratified split was impossible ({exc}); falling back to a plain random split.",
            stacklevel=3,
        )
        train, test = train_test_split(idx, test_size=test_size, random_state=random_state)
    return np.sort(train), np.sort(test)


def _knn_predict(
    X: np.ndarray, y: np.ndarray, k: int, test_size: float, random_state: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(test indices, predictions on them) of a k-NN fitted on the train part."""
    from sklearn.neighbors import KNeighborsClassifier

    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer; got {k!r}.")
    train, test = _split(y, test_size, random_state)
    if len(train) < k:
        raise DataError(
            f"only {len(train)} training points for k={k} neighbours; use more points or a smaller k."
        )
    clf = KNeighborsClassifier(n_neighbors=int(k)).fit(X[train], y[train])
    return test, clf.predict(X[test])


def knn_accuracy(
    embedding: Any,
    labels: Any,
    k: int = 15,
    test_size: float = 0.1,
    random_state: int | None = 0,
) -> float:
    """kNN classification accuracy of an embedding, as in the paper.

    Parameters
    ----------
    embedding
        Array of shape (N, d); a map is (N, 2).
    labels
        Class of each point, shape (N,).
    k
        Number of neighbours (the paper: 15).
    test_size
        Fraction of points held out (the paper: 0.1, i.e. a 9:1 split).
    random_state
        Seed of the stratified split (the medical code used 0).

    Returns
    -------
    float
        Fraction of held-out points whose class the k nearest training points
        predict correctly, in [0, 1].
    """
    X = check_embedding(embedding)
    y = check_labels_for_scoring(labels, len(X))
    test, pred = _knn_predict(X, y, k, test_size, check_seed(random_state))
    return float(np.mean(pred == y[test]))


# --------------------------------------------------------------- silhouette
def _stratified_sample(y: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` indices keeping class proportions (each class >= 2 points where it has them)."""
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    quota = counts / counts.sum() * m
    take = np.minimum(np.maximum(np.floor(quota).astype(int), 2), counts)
    chosen = []
    for c, t in enumerate(take):
        members = np.flatnonzero(inverse == c)
        chosen.append(rng.choice(members, size=t, replace=False))
    return np.sort(np.concatenate(chosen))


def silhouette(
    embedding: Any,
    labels: Any,
    max_exact: int = 20000,
    sample_size: int = 20000,
    n_repeats: int = 3,
    random_state: int | None = 0,
) -> float:
    """Silhouette score of the embedding with the class labels (Euclidean).

    Exact (:func:`sklearn.metrics.silhouette_score` on all points) while
    ``N <= max_exact``.  Above that the exact score costs O(N^2) distances, so it
    is *estimated*: ``n_repeats`` seeded stratified samples of ``sample_size``
    points are scored exactly and the scores averaged.  With the defaults the
    estimate is within :data:`SILHOUETTE_SAMPLE_TOLERANCE` (0.01) of the exact
    value; the error shrinks like ``1 / sqrt(sample_size * n_repeats)``.

    Parameters
    ----------
    embedding
        Array of shape (N, d).
    labels
        Class of each point, shape (N,); at least two classes.
    max_exact
        Largest N scored exactly.
    sample_size
        Points per sample above ``max_exact``.
    n_repeats
        Number of independent samples averaged.
    random_state
        Seed of the samples (the result is reproducible).

    Returns
    -------
    float
        Score in [-1, 1]; higher means classes are further apart.
    """
    from sklearn.metrics import silhouette_score

    X = check_embedding(embedding)
    y = check_labels_for_scoring(labels, len(X))
    if max_exact < 2 or sample_size < 2 or n_repeats < 1:
        raise ConfigError(
            f"max_exact and sample_size must be >= 2 and n_repeats >= 1; got {max_exact}, "
            f"{sample_size}, {n_repeats}."
        )
    if len(X) <= max_exact:
        return float(silhouette_score(X, y, metric="euclidean"))
    rng = np.random.default_rng(check_seed(random_state))
    scores = []
    for _ in range(int(n_repeats)):
        idx = _stratified_sample(y, min(sample_size, len(X)), rng)
        scores.append(silhouette_score(X[idx], y[idx], metric="euclidean"))
    return float(np.mean(scores))


def evaluate(embedding: Any, labels: Any, random_state: int | None = 0) -> dict[str, float]:
    """Both of the paper's 2-D metrics.

    Returns
    -------
    dict
        ``{"knn_accuracy": float in [0, 1], "silhouette": float in [-1, 1]}``.
    """
    X = check_embedding(embedding)
    y = check_labels_for_scoring(labels, len(X))
    return {
        "knn_accuracy": knn_accuracy(X, y, random_state=random_state),
        "silhouette": silhouette(X, y, random_state=random_state),
    }


# -------------------------------------------------------------- linear probe
def _unpenalised_logreg(max_iter: int, random_state: int | None) -> Any:
    from sklearn.linear_model import LogisticRegression

    # scikit-learn 1.8 deprecated ``penalty``; ``C=inf`` is its documented replacement
    # for penalty=None.  Older versions need penalty=None.
    default_penalty = inspect.signature(LogisticRegression).parameters["penalty"].default
    kwargs: dict[str, Any] = (
        {"C": np.inf} if default_penalty == "deprecated" else {"penalty": None}
    )
    return LogisticRegression(
        solver="saga", max_iter=max_iter, random_state=random_state, **kwargs
    )


def linear_probe(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    max_iter: int = 1000,
    random_state: int | None = 0,
) -> float:
    """Linear evaluation of features: test accuracy of a logistic regression.

    StandardScaler, then multinomial logistic regression without penalty and the
    ``saga`` solver (the paper's Table 5), fitted on the training features
    (the paper: train + validation splits) and scored on the test features.

    Parameters
    ----------
    train_features, test_features
        Arrays of shape (N_train, d) and (N_test, d).
    train_labels, test_labels
        Their classes.
    max_iter
        Iteration cap of saga; a ConvergenceWarning is raised by scikit-learn if it
        is reached (the accuracy is still returned).
    random_state
        Seed of saga's sample order.

    Returns
    -------
    float
        Test accuracy in [0, 1].
    """
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xtr = check_embedding(train_features, name="train_features")
    Xte = check_embedding(test_features, name="test_features")
    ytr = check_labels_for_scoring(train_labels, len(Xtr))
    yte = check_labels_for_scoring(test_labels, len(Xte), min_classes=1)
    if Xtr.shape[1] != Xte.shape[1]:
        raise DataError(
            f"train_features have {Xtr.shape[1]} dimensions but test_features {Xte.shape[1]}; "
            "both must come from the same feature extractor."
        )
    model = make_pipeline(StandardScaler(), _unpenalised_logreg(max_iter, random_state))
    model.fit(Xtr, ytr)
    return float(model.score(Xte, yte))


# --------------------------------------------------------------- per class
def _names(class_names: Any, classes: np.ndarray) -> list[str]:
    if class_names is None:
        return [str(c) for c in classes]
    names = list(class_names)
    out = []
    for c in classes:
        if isinstance(c, (int, np.integer)) and 0 <= int(c) < len(names):
            out.append(str(names[int(c)]))
        else:
            raise DataError(
                f"label {c!r} has no entry in class_names (length {len(names)}); pass one name per "
                "class index."
            )
    return out


def per_class_report(
    embedding: Any,
    labels: Any,
    class_names: Any = None,
    k: int = 15,
    random_state: int | None = 0,
    test_size: float = 0.1,
) -> Any:
    """Per-class kNN accuracy on the same split as :func:`knn_accuracy`.

    Returns
    -------
    pandas.DataFrame
        One row per class (index: class name) with columns ``label``, ``support``
        (points of the class), ``n_test`` (held-out points), ``knn_accuracy``
        (fraction of the held-out points of the class predicted correctly, NaN
        when the class has none held out) and ``most_confused_with`` (the class
        its misclassified points were most often given, or "").  The
        ``n_test``-weighted mean of ``knn_accuracy`` equals :func:`knn_accuracy`.
    """
    import pandas as pd

    X = check_embedding(embedding)
    y = check_labels_for_scoring(labels, len(X))
    test, pred = _knn_predict(X, y, k, test_size, check_seed(random_state))
    classes, support = np.unique(y, return_counts=True)
    names = _names(class_names, classes)
    name_of = dict(zip(classes.tolist(), names, strict=True))
    rows = []
    yt = y[test]
    for c, s, nm in zip(classes, support, names, strict=True):
        mask = yt == c
        n_test = int(mask.sum())
        acc = float(np.mean(pred[mask] == c)) if n_test else float("nan")
        wrong = pred[mask][pred[mask] != c]
        if wrong.size:
            vals, cnt = np.unique(wrong, return_counts=True)
            confused = name_of.get(vals[np.argmax(cnt)].item(), str(vals[np.argmax(cnt)]))
        else:
            confused = ""
        rows.append(
            {"class": nm, "label": c.item(), "support": int(s), "n_test": n_test,
             "knn_accuracy": acc, "most_confused_with": confused}
        )
    return pd.DataFrame(rows).set_index("class")


def confusion_table(
    embedding: Any,
    labels: Any,
    class_names: Any = None,
    k: int = 15,
    random_state: int | None = 0,
    test_size: float = 0.1,
    normalize: bool = False,
) -> Any:
    """Confusion matrix of the kNN classifier of :func:`knn_accuracy`.

    Returns
    -------
    pandas.DataFrame
        Rows: true class, columns: predicted class (both named).  Counts of
        held-out points, or row fractions with ``normalize=True``.
    """
    import pandas as pd
    from sklearn.metrics import confusion_matrix

    X = check_embedding(embedding)
    y = check_labels_for_scoring(labels, len(X))
    test, pred = _knn_predict(X, y, k, test_size, check_seed(random_state))
    classes = np.unique(y)
    names = _names(class_names, classes)
    cm = confusion_matrix(y[test], pred, labels=classes)
    df = pd.DataFrame(cm, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))
    if normalize:
        df = df.div(df.sum(axis=1).replace(0, np.nan), axis=0)
    return df
