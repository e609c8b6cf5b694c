"""TF_CONFIG for MultiWorkerMirroredStrategy on Ray Train workers, with no TensorFlow in the
Ray Train controller.

Ray's ``TensorflowConfig`` does the same, but it lives in ``ray.train.tensorflow``, whose
``__init__`` imports TensorFlow, and it names its framework, whose versions Ray Train then
collects by importing tensorflow and keras: the TrainController process spends seconds of CPU
and hundreds of MB on a library it never uses. This config imports ``ray.train.backend``
alone; the workers import TensorFlow themselves, in the training loop.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass

import ray
from ray.train.backend import Backend, BackendConfig


def _address() -> str:
    """This node's address and a free port: one MultiWorkerMirroredStrategy endpoint."""
    host = ray.util.get_node_ip_address()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    return f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"


def _set_tf_config(addresses: list[str], index: int) -> None:
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses},
                                          "task": {"type": "worker", "index": index}})


class _TFConfigBackend(Backend):
    def on_start(self, worker_group, backend_config: BackendConfig) -> None:
        addresses = worker_group.execute(_address)
        ray.get([worker_group.execute_single_async(i, _set_tf_config, addresses, i)
                 for i in range(len(worker_group))])


@dataclass
class TFConfig(BackendConfig):
    """Ray Train backend: sets TF_CONFIG on every worker (world rank = task index)."""

    @property
    def backend_cls(self):
        return _TFConfigBackend

    @property
    def framework(self):
        """None: Ray Train collects a named framework's versions by importing its modules in
        the controller, which would bring TensorFlow back there."""
        return None
