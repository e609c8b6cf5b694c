"""The training spine: one ``train(cfg)`` for every train job. It plans the split, has the
task (tasks.py) fit its model, then writes the same run directory for all of them."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mer_ray.config import EMOTIONS, TrainAudioConfig, TrainVisualConfig
from mer_ray.data.splits import TEST, TRAIN, VAL, SplitPlan, make_plan
from mer_ray.train import rundir
from mer_ray.train.data import TrainData, plan_data
from mer_ray.train.loop import TrainHooks
from mer_ray.train.tasks import FitResult, Task, task_for

log = logging.getLogger(__name__)

LEAKY_NOTE = ("thesis protocol: random split over rows; frames/clips of the same actor are on "
              "both sides, so this accuracy is optimistic (leaky), not actor-independent")


@dataclass
class TrainOutcome:
    """What a finished training run produced."""

    run_dir: str
    metrics: dict
    history: list[dict]
    plan: SplitPlan
    counts: dict = field(default_factory=dict)


def resolve_plan(cfg) -> Callable[[list[str]], SplitPlan]:
    return lambda groups: make_plan(groups, cfg.protocol, cfg.fold, cfg.val, cfg.seed)


def train(cfg: TrainVisualConfig | TrainAudioConfig, progress: bool = False,
          hooks: TrainHooks | None = None) -> TrainOutcome:
    """Run one training job end to end and write its run directory (``cfg.out``, a local
    path or a URI: see rundir.train_to_uri). Every setting of ``cfg`` is honoured or refused
    with a ValueError before any work (tasks.task_for).

    ``progress``: print one line per epoch (loss, accuracy, validation accuracy).
    ``hooks``: callables the workers run (TrainHooks; tests use them to inject a crash).
    """
    from mer_ray.storage import is_uri

    task = task_for(cfg)
    if is_uri(cfg.out):
        return rundir.train_to_uri(train, cfg, progress=progress, hooks=hooks)
    t0 = time.perf_counter()
    cfg = task.cfg
    out = Path(cfg.out).resolve()
    plan, data = plan_data(cfg.shards, task.source(), resolve_plan(cfg))
    counts = data.summary(task.augmented)
    for split in (TRAIN, TEST):
        if counts[split]["rows"] == 0:
            raise ValueError(f"the {split} split is empty ({plan.protocol} fold {plan.fold})")
    out.mkdir(parents=True, exist_ok=True)      # only once the input holds a usable split
    log.info("split %s fold %s: %s", plan.protocol, plan.fold,
             {k: v["rows"] for k, v in counts.items()})
    fit = task.fit(data, plan, out, progress, hooks)
    outcome = _write_run_dir(out, task, plan, data, counts, fit, t0)
    task.cleanup(out)
    return outcome


def _write_run_dir(out: Path, task: Task, plan: SplitPlan, data: TrainData, counts: dict,
                   fit: FitResult, t0: float) -> TrainOutcome:
    """bundle.json, labels.json, config.json, (history.csv, curves.png), metrics.json and
    confusion.png, the test metrics predicted by the saved bundle as scoring would."""
    from mer_ray.models.bundle import write_bundle_info
    from mer_ray.report.plots import save_confusion_png, save_curves_png
    from mer_ray.train.evaluate import evaluate

    info = write_bundle_info(str(out), task.bundle_info())
    rundir.write_labels(out)
    rundir.write_json(out / "config.json", {"kind": task.kind, **task.cfg.to_dict(),
                                            "split": plan.to_dict()})
    history = fit.history
    if task.in_epochs:
        rundir.write_history_csv(history, out / "history.csv")
        save_curves_png(history, str(out / "curves.png"), title=f"{task.kind} training")
    predict = task.predictor(str(out))
    test = evaluate(predict, data, plan, TEST, per_video=task.per_video)
    best = next((r for r in history if r.get("best")), history[-1] if history else {})
    val = {}
    if not task.in_epochs:     # no epochs to choose: validation rows are only reported
        val = {"val_accuracy": evaluate(predict, data, plan, VAL)["accuracy"]
               if counts[VAL]["rows"] else None}
    metrics = {
        "kind": task.kind, "model_id": info.model_id, **task.describe(),
        "protocol": plan.protocol, "fold": plan.fold, "val": plan.val, "leaky": plan.leaky,
        **({"note": LEAKY_NOTE} if plan.leaky else {}),
        "split": "test", **test, **val,
        "best_epoch": best.get("epoch"), "best_val_acc": best.get("val_acc"),
        "epochs_run": len(history), "resumed": any(r.get("attempt") for r in history),
        **fit.metrics, "total_s": time.perf_counter() - t0, "counts": counts,
    }
    rundir.write_json(out / "metrics.json", metrics)
    title = (f"{task.title} {plan.protocol}{'' if plan.fold is None else ' fold ' + plan.fold}"
             f"{' (LEAKY)' if plan.leaky else ''}: acc {test['accuracy']:.3f}")
    save_confusion_png(test["confusion_matrix"], EMOTIONS, str(out / "confusion.png"), title)
    return TrainOutcome(str(out), metrics, history, plan, counts)
