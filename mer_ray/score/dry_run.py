"""`mer-ray score --dry-run`: the score job's bookkeeping and nothing else.

Lists the inputs, checks them against the committed scores shards (read only), resolves the
models (bundle.json files, the default voice model's choice) and the actor plan, and says how
many inputs are left and whether they would be scored without Ray. Starts no Ray, takes no
lock, creates and changes nothing.
"""
from __future__ import annotations

import dataclasses

from mer_ray.config import ScoreConfig
from mer_ray.data.bookkeeping import (block_count, format_dry_run, planned_cpus, speakers, stock_counts,
                                      take_stock)
from mer_ray.data.sources import list_inputs_table
from mer_ray.score.in_process import describe_in_process, runs_in_process
from mer_ray.score.plan import GIB, Workers, plan_workers, resolve_models, resolve_plan
from mer_ray.score.schema import scores_store


def dry_run_score(cfg: ScoreConfig) -> dict:
    """Counts (inputs, done, to_do, rows_without_input), the models and the actor plan a score
    run of ``cfg`` would use. Raises what the run would raise before its first input (no
    inputs, a wrong bundle, an output made with other models or weights)."""
    from mer_ray.data.preprocess import no_inputs_message
    from mer_ray.score.job import check_same_run, run_record

    listed = list_inputs_table(cfg.source, cfg.corpus)
    if not listed.num_rows and not cfg.allow_empty:
        raise ValueError(no_inputs_message(cfg.source))
    cfg = resolve_models(cfg, speakers(listed))
    plan = resolve_plan(cfg)
    store = scores_store(cfg.out)
    stock = take_stock(listed, store, writer=False)
    check_same_run(store, run_record(cfg, plan), has_rows=stock.committed > 0)
    cpus, note = planned_cpus(cfg.ray)
    workers = plan_workers(cfg, cpus)
    counts = {k: v for k, v in stock_counts(stock).items() if k != "dropped"}
    todo = stock.todo.num_rows
    plan_text = (describe_in_process(cfg, todo) if runs_in_process(cfg, todo)
                 else describe_plan(cfg, workers, todo))
    return {**counts, "plan": plan_text, "plan_note": note,
            "cpus": cpus, "workers": dataclasses.asdict(workers), "models": plan.model_ids}


def extraction_actors(workers: Workers, n_inputs: int) -> int:
    """Extraction actors the score pipeline starts for ``n_inputs`` (score.job.build_dataset:
    never more than its input blocks, of at least two inputs each)."""
    return max(1, min(workers.extract_workers, block_count(n_inputs)))


def describe_plan(cfg: ScoreConfig, workers: Workers, n_inputs: int) -> str:
    """'2 extraction actors x 0.73 CPU 0.7 GiB, 1 visual actor x 0.25 CPU 1 GiB, ...,
    at most 256 MiB queued between stages'."""
    if not n_inputs:
        return "nothing to score"

    def actors(n: int, what: str, cpus: float, stage: str, gpus: float = 0.0) -> str:
        gpu = f" + {gpus:g} GPU" if gpus > 0 else ""
        memory = workers.memory.get(stage)
        mem = f" {memory / GIB:.2g} GiB" if memory else ""
        return f"{n} {what} actor{'s' * (n != 1)} x {cpus:g} CPU{gpu}{mem}"

    parts = [actors(extraction_actors(workers, n_inputs), "extraction", workers.extract_cpus,
                    "extract")]
    if cfg.visual is not None:
        parts.append(actors(cfg.visual_workers, "visual", workers.model_cpus, "visual",
                            cfg.gpus_per_worker))
    if cfg.audio is not None:
        parts.append(actors(cfg.audio_workers, "audio", workers.model_cpus, "audio",
                            cfg.audio_gpus))
    parts.append(f"at most {workers.buffer / 1024 ** 2:.0f} MiB queued between stages")
    return ", ".join(parts)


def format_score_dry_run(report: dict) -> str:
    """The line ``score --dry-run`` prints."""
    return format_dry_run(report, "score")
