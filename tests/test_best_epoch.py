"""The kept ("best") epoch is told the same way, 1-based, by the console and by curves.png."""
from __future__ import annotations

from types import SimpleNamespace

from mer_ray.commands.train_args import format_summary
from mer_ray.report.plots import best_epoch_text, epoch_number, save_curves_png

ROWS = [{"epoch": e, "train_loss": 2.0 - e / 4, "train_acc": 0.2 + e / 10,
         "val_loss": 1.5 - e / 8, "val_acc": acc, "best": e == 1}
        for e, acc in enumerate([0.3, 0.5, 0.45, 0.4])]


def test_epoch_numbers_are_one_based():
    assert epoch_number(0) == 1 and epoch_number(None) is None
    assert best_epoch_text(1, 4) == "best epoch 2 of 4"
    assert best_epoch_text(None, 0) == "best epoch - of 0"


def test_console_prints_the_one_based_best_epoch():
    metrics = {"kind": "visual", "protocol": "actor5fold", "fold": "0", "leaky": False,
               "accuracy": 0.5, "chance_level": 0.14, "n": 10, "macro": {"f1": 0.4},
               "best_epoch": 1, "epochs_run": 4, "resumed": False}
    text = format_summary(SimpleNamespace(metrics=metrics, run_dir="runs/v"))
    assert "best epoch 2 of 4" in text


def test_curves_mark_the_same_epoch(tmp_path, monkeypatch):
    import matplotlib.axes

    marks = []
    real = matplotlib.axes.Axes.axvline

    def spy(self, x=0, *args, **kwargs):
        marks.append((x, kwargs.get("label")))
        return real(self, x, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "axvline", spy)
    path = save_curves_png(ROWS, str(tmp_path / "curves.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert marks == [(2, "best epoch 2")] * 2               # loss and accuracy panels
    marks.clear()
    save_curves_png([{**r, "best": False} for r in ROWS], str(tmp_path / "none.png"))
    assert marks == []                                     # nothing kept: no marker
