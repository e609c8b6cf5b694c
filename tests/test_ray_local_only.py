"""Embedded Ray listens on this machine only (127.0.0.1) unless told otherwise."""
from __future__ import annotations

import ipaddress

import pytest

from mer_ray.config import RayConfig
from mer_ray.runtime import _node_ip, ray_host


def _loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def _session_processes(node) -> list:
    """This driver's Ray processes (GCS, raylet, agents) and their children (the workers)."""
    import psutil

    procs = {}
    for infos in node.all_processes.values():
        for info in infos:
            try:
                p = psutil.Process(info.process.pid)
            except psutil.NoSuchProcess:
                continue
            for q in [p, *p.children(recursive=True)]:
                procs[q.pid] = q
    return list(procs.values())


def test_host_defaults_to_loopback(monkeypatch):
    monkeypatch.delenv("MER_RAY_HOST", raising=False)
    assert ray_host(RayConfig()) == "127.0.0.1"
    monkeypatch.setenv("MER_RAY_HOST", "10.1.2.3")
    assert ray_host(RayConfig()) == "10.1.2.3"
    assert ray_host(RayConfig(host="10.9.9.9")) == "10.9.9.9"
    with _node_ip("10.1.2.3") as kwargs:
        assert kwargs == {"_node_ip_address": "10.1.2.3"}


@pytest.mark.slow
def test_embedded_ray_listens_on_loopback_only(ray_local):
    import psutil

    node = ray_local._private.worker.global_worker.node
    if not node.all_processes:
        pytest.skip("this session's Ray was not started by this process")
    assert node.node_ip_address == "127.0.0.1"

    @ray_local.remote
    def ping() -> int:
        return 1

    assert ray_local.get(ping.remote()) == 1        # at least one worker process is up
    listening = []
    for proc in _session_processes(node):
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        listening += [(proc.name(), c.laddr.ip, c.laddr.port) for c in conns
                      if c.status == psutil.CONN_LISTEN]
    ports = {port for _, _, port in listening}
    assert int(node.gcs_address.rsplit(":", 1)[1]) in ports
    assert node.metrics_export_port in ports           # the unauthenticated HTTP endpoint
    open_to_all = [entry for entry in listening if not _loopback(entry[1])]
    assert not open_to_all, open_to_all
