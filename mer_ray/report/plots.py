"""PNG figures for run directories (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_confusion_png(cm, classes: Sequence[str], path: str, title: str = "") -> str:
    """Confusion matrix (rows = true, columns = predicted) with counts and row-normalised
    shading, saved to ``path``."""
    plt = _pyplot()
    cm = np.asarray(cm, dtype=np.int64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(len(classes)), labels=classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), labels=classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def epoch_number(epoch: int | None) -> int | None:
    """The 1-based epoch number people read (console, curves.png) for a history row's 0-based
    ``epoch`` (history.csv and metrics.json's ``best_epoch`` count from 0, as Keras does)."""
    return None if epoch is None else int(epoch) + 1


def best_epoch_text(best_epoch: int | None, epochs_run: int) -> str:
    """``best epoch N of M`` with N 1-based, as the curves.png marker says it."""
    n = epoch_number(best_epoch)
    return f"best epoch {'-' if n is None else n} of {epochs_run}"


def best_row(history_rows: Sequence[dict]) -> dict | None:
    """The history row whose model was kept (``best`` set by training), else None."""
    return next((r for r in history_rows if r.get("best")), None)


def save_curves_png(history_rows: Sequence[dict], path: str, title: str = "") -> str:
    """Loss and accuracy per epoch (train, and validation where present) saved to ``path``,
    epochs numbered from 1; the kept epoch (the row marked ``best``) gets a vertical line
    labelled ``best epoch N``, the number the training console prints."""
    plt = _pyplot()
    epochs = [epoch_number(r["epoch"]) for r in history_rows]
    best = best_row(history_rows)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
        for prefix, style in (("train_", "-"), ("val_", "--")):
            values = [r.get(prefix + key) for r in history_rows]
            points = [(e, v) for e, v in zip(epochs, values) if v is not None and v == v]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, style, label=f"{prefix.rstrip('_')} {key}")
        if best is not None:
            n = epoch_number(best["epoch"])
            ax.axvline(n, color="tab:red", linestyle=":", linewidth=1.5, label=f"best epoch {n}")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
