"""The Ray Train worker loop: a custom tf.distribute.MultiWorkerMirroredStrategy loop.

(Keras 3's model.fit does not work under MWMS, so the step is written by hand.) Every epoch:
train on this worker's shard of "train" (``get_dataset_shard(...).iter_tf_batches``),
validate on rank 0 (which reads the validation rows itself: data.LocalSplit), and every
``checkpoint_every`` epochs (1: every epoch) save a checkpoint (model.keras = current,
best.keras = best on validation, meta.json = epoch, history) from rank 0 and report from
every rank. At start the loop resumes from
``ray.train.get_checkpoint()`` when Ray Train restarted it after a failure.

The loop knows nothing about the model kind: the loop config hands it a model builder, the
input dtype, whether to augment and cache, optional class weights for the loss, and the
caller's hooks (see TrainHooks).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

META_FILE = "meta.json"
CURRENT_FILE = "model.keras"
BEST_FILE = "best.keras"


EpochHook = Callable[[int, int, int], None]
"""Called as hook(epoch, rank, world_size) on every worker."""


@dataclass
class TrainHooks:
    """Callables a caller hands to runner.train that the workers run; none in normal use.
    They are pickled to the workers, so they must be picklable (module-level functions or
    objects)."""

    on_epoch_start: EpochHook | None = None   # before each epoch (tests raise here to crash)


@dataclass
class WorkerLoop:
    """The Ray Train function: train_loop_per_worker with the run's callables (and rank 0's
    validation reader) bound.

    They travel here and not in the loop config because Ray Train ships this function to the
    workers alone, while it also unpickles the loop config in its controller, where a model
    builder would import Keras and TensorFlow (seconds of CPU, hundreds of MB)."""

    build_model: Callable                     # () -> an uncompiled keras.Model
    on_epoch_start: EpochHook | None = None   # TrainHooks.on_epoch_start
    val: object | None = None                 # rank 0's validation rows (data.LocalSplit)

    def __call__(self, cfg: dict) -> None:
        train_loop_per_worker({**cfg, "build_model": self.build_model,
                               "on_epoch_start": self.on_epoch_start, "val": self.val})


def compile_model(model, lr: float):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss="sparse_categorical_crossentropy")
    return model


def _restore(checkpoint, best_local: str):
    """(model, meta) from a Ray checkpoint; best.keras copied to ``best_local``."""
    import keras

    import mer_ray.models.visual  # noqa: F401  (custom layer registration)

    with checkpoint.as_directory() as d:
        meta = json.loads(Path(d, META_FILE).read_text())
        model = keras.saving.load_model(os.path.join(d, CURRENT_FILE), compile=True)
        if os.path.exists(os.path.join(d, BEST_FILE)):
            shutil.copyfile(os.path.join(d, BEST_FILE), best_local)
    return model, meta


class _Batches:
    """Per-epoch batches of one dataset shard: streamed through Ray Data each epoch, or read
    once and kept in memory (``cache``: small tables such as audio features)."""

    def __init__(self, shard, batch_size: int, cache: bool, shuffle: bool, seed: int,
                 x_dtype, drop_last: bool):
        self.shard, self.batch_size, self.cache = shard, batch_size, cache
        self.shuffle, self.seed, self.x_dtype, self.drop_last = shuffle, seed, x_dtype, drop_last
        self._arrays = None

    def _tf_batches(self):
        import tensorflow as tf

        return self.shard.iter_tf_batches(
            batch_size=self.batch_size, drop_last=self.drop_last,
            dtypes={"x": self.x_dtype, "y": tf.int32},
            local_shuffle_buffer_size=max(4 * self.batch_size, 64) if self.shuffle else None)

    def epoch(self, epoch: int):
        import tensorflow as tf

        if not self.cache:
            for batch in self._tf_batches():
                yield batch["x"], batch["y"]
            return
        if self._arrays is None:
            xs, ys = [], []
            for batch in self.shard.iter_batches(batch_size=4096, batch_format="numpy"):
                xs.append(batch["x"])
                ys.append(batch["y"])
            self._arrays = (np.concatenate(xs) if xs else np.zeros((0,)),
                            np.concatenate(ys) if ys else np.zeros((0,), np.int32))
        x, y = self._arrays
        order = (np.random.default_rng([self.seed, epoch]).permutation(len(y)) if self.shuffle
                 else np.arange(len(y)))
        stop = len(y) - len(y) % self.batch_size if self.drop_last else len(y)
        for start in range(0, stop, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield tf.constant(x[idx], self.x_dtype), tf.constant(y[idx].astype(np.int32))


def per_example_loss(y, probs, class_weights=None):
    """Sparse categorical cross-entropy per example, times the weight of its true class when
    ``class_weights`` (a (K,) tensor) is given."""
    import keras
    import tensorflow as tf

    loss = keras.losses.sparse_categorical_crossentropy(y, probs)
    return loss if class_weights is None else loss * tf.gather(class_weights, y)


def train_loop_per_worker(cfg: dict) -> None:
    """The worker loop (see module doc): ``cfg`` is raytrain.loop_config's plus WorkerLoop's
    fields. The best model so far lives in a scratch folder that goes when the loop ends."""
    with tempfile.TemporaryDirectory(prefix="mer_ray_best_") as scratch:
        _train_worker(cfg, os.path.join(scratch, BEST_FILE))


def _train_worker(cfg: dict, best_local: str) -> None:
    import ray.train
    import tensorflow as tf

    threads = int(cfg.get("threads") or 0)
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, threads))
    import keras

    from mer_ray.models.augment import augment_batch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    keras.utils.set_random_seed(int(cfg["seed"]) + 1000 * rank)

    checkpoint = ray.train.get_checkpoint()
    with strategy.scope():
        if checkpoint is not None:
            model, meta = _restore(checkpoint, best_local)
            if meta.get("config_key") != cfg["config_key"]:
                raise ValueError("the checkpoint in this run's storage was written by a different "
                                 "configuration; delete OUT/_ray or use another --out")
            meta["attempt"] = int(meta.get("attempt", 0)) + 1
        else:
            model = compile_model(cfg["build_model"](), cfg["lr"])
            meta = {"epoch": -1, "best_epoch": -1, "best_val_acc": -1.0, "best_val_loss": None,
                    "history": [], "attempt": 0, "config_key": cfg["config_key"]}
        optimizer = model.optimizer

    global_batch = int(cfg["global_batch"])
    per_worker = max(1, global_batch // world)
    x_dtype = tf.as_dtype(cfg["x_dtype"])
    train = _Batches(ray.train.get_dataset_shard("train"), per_worker, cfg["cache"], True,
                     int(cfg["seed"]) + rank, x_dtype, drop_last=True)
    val_rows = cfg.get("val") if rank == 0 else None     # None: no validation split
    val = (_Batches(val_rows, 64, cfg["cache_val"], False, 0, x_dtype, drop_last=False)
           if val_rows is not None else None)
    steps = int(cfg["steps_per_epoch"])
    augment = bool(cfg.get("augment"))
    weights = (tf.constant(cfg["class_weights"], tf.float32) if cfg.get("class_weights")
               else None)
    on_epoch_start = cfg.get("on_epoch_start")

    @tf.function
    def train_step(x, y):
        def step(x, y):
            if augment:
                x = augment_batch(x)
            with tf.GradientTape() as tape:
                probs = model(x, training=True)
                per_example = per_example_loss(y, probs, weights)
                loss = tf.reduce_sum(per_example) / global_batch
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probs, -1, output_type=tf.int32), y),
                                         tf.float32))
            return tf.reduce_sum(per_example), hits, tf.cast(tf.shape(y)[0], tf.float32)

        out = strategy.run(step, args=(x, y))
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in out]

    @tf.function(reduce_retracing=True)
    def eval_step(x, y):
        probs = model(x, training=False)
        per_example = keras.losses.sparse_categorical_crossentropy(y, probs)
        hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probs, -1, output_type=tf.int32), y),
                                     tf.float32))
        return tf.reduce_sum(per_example), hits, tf.cast(tf.shape(y)[0], tf.float32)

    for epoch in range(int(meta["epoch"]) + 1, int(cfg["epochs"])):
        if on_epoch_start is not None:
            on_epoch_start(epoch, rank, world)
        t0 = time.perf_counter()
        totals = np.zeros(3)
        done = 0
        for x, y in train.epoch(epoch):
            if done < steps:   # every worker runs exactly `steps` collective steps
                totals += [float(v) for v in train_step(x, y)]
                done += 1
        train_s = time.perf_counter() - t0
        row = {"epoch": epoch, "train_loss": totals[0] / max(totals[2], 1),
               "train_acc": totals[1] / max(totals[2], 1), "train_samples": int(totals[2]),
               "train_s": round(train_s, 4), "val_loss": None, "val_acc": None,
               "attempt": meta["attempt"]}
        if val is not None:
            vt = np.zeros(3)
            for x, y in val.epoch(epoch):
                vt += [float(v) for v in eval_step(x, y)]
            if vt[2]:
                row["val_loss"], row["val_acc"] = vt[0] / vt[2], vt[1] / vt[2]
        row["epoch_s"] = round(time.perf_counter() - t0, 4)
        _record(model, meta, row, rank, best_local)
        every = max(1, int(cfg.get("checkpoint_every") or 1))
        if (epoch + 1) % every == 0 or epoch + 1 == int(cfg["epochs"]):
            _report(model, meta, rank, best_local)


def _improved(meta: dict, row: dict) -> bool:
    if row["val_acc"] is None:
        return True  # no validation: keep the latest
    if row["val_acc"] > meta["best_val_acc"]:
        return True
    return (row["val_acc"] == meta["best_val_acc"] and meta["best_val_loss"] is not None
            and row["val_loss"] < meta["best_val_loss"])


def weights_checksum(model) -> float:
    """Sum of |w| over the trainable weights: equal on every rank when replicas are in sync."""
    return float(sum(np.abs(np.asarray(w)).sum() for w in model.trainable_weights))


def _record(model, meta: dict, row: dict, rank: int, best_local: str) -> None:
    """Append an epoch to the history; save the model as best.keras when validation improved."""
    if _improved(meta, row):
        meta.update(best_epoch=row["epoch"], best_val_acc=row["val_acc"] if row["val_acc"]
                    is not None else -1.0, best_val_loss=row["val_loss"])
        if rank == 0:
            model.save(best_local)
    meta["epoch"] = row["epoch"]
    meta["history"].append(row)


def _report(model, meta: dict, rank: int, best_local: str) -> None:
    """ray.train.report from every rank; rank 0 attaches the checkpoint (model.keras,
    best.keras, meta.json). ``epochs`` carries the history rows since the last report."""
    import ray.train

    last = meta["history"][-1]
    recent = [r for r in meta["history"] if r["epoch"] > meta.get("reported_epoch", -1)]
    meta["reported_epoch"] = last["epoch"]
    metrics = {**last, "best_epoch": meta["best_epoch"], "best_val_acc": meta["best_val_acc"],
               "epochs": recent, "weights_checksum": weights_checksum(model)}
    if rank != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix="mer_ray_ckpt_") as tmp:
        model.save(os.path.join(tmp, CURRENT_FILE))
        shutil.copyfile(best_local, os.path.join(tmp, BEST_FILE))
        Path(tmp, META_FILE).write_text(json.dumps(meta, indent=1))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
