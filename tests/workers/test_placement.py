"""Resource tags decide where work lands: on a fake multi-node Ray cluster (one machine),
media workers go to the node type that offers "media", ASR workers to the one offering "asr",
and the ASR pool asks for a GPU exactly when the cluster has one.

Runs in a subprocess: the test session already holds its own single-node Ray cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from clipmaker.settings import Settings
from clipmaker.workers import asr_actor_options, media_actor_options

SCRIPT = r"""
import json, sys
import ray
from ray.cluster_utils import Cluster
from clipmaker.settings import Settings
from clipmaker.workers import asr_uses_gpu, check_workers, ensure_worker_pool, worker_names
from clipmaker.workers import NAMESPACE, shutdown_worker_pool
from clipmaker.queue import stop_embedded_redis

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
media_node = cluster.add_node(num_cpus=2, resources={"media": 2})
asr_node = cluster.add_node(num_cpus=2, resources={"asr": 1})
ray.init(address=cluster.address, logging_level="ERROR")
settings = Settings(
    data_dir=sys.argv[1], instance="placement", asr_use_gpu="auto",
    media_worker_resources={"media": 1}, asr_worker_resources={"asr": 1},
)
gpu_before = asr_uses_gpu(settings)
ensure_worker_pool(settings)
check_workers(settings, timeout_s=180)
placed = {
    name: ray.get(ray.get_actor(name, NAMESPACE).ping.remote()) for name in worker_names(settings)
}
shutdown_worker_pool(settings)
cluster.add_node(num_cpus=1, num_gpus=1)
cluster.wait_for_nodes()
gpu_after = asr_uses_gpu(settings)
print(json.dumps({
    "media_node": media_node.node_id, "asr_node": asr_node.node_id, "placed": placed,
    "gpu_before": gpu_before, "gpu_after": gpu_after,
}))
ray.shutdown()
cluster.shutdown()
stop_embedded_redis(settings.data_dir)
"""


def test_workers_land_on_the_node_types_their_tags_name(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    placed = report["placed"]
    assert placed["placement-media-0"]["node"] == report["media_node"]
    assert placed["placement-asr-0"]["node"] == report["asr_node"]
    assert placed["placement-asr-0"]["device"] == "cpu"  # no GPU in the cluster yet
    assert placed["placement-asr-0"]["compute_type"] == "int8"
    assert report["gpu_before"] is False and report["gpu_after"] is True


def test_asr_workers_take_a_gpu_when_there_is_one() -> None:
    settings = Settings(asr_worker_resources={"asr": 1}, media_worker_resources={"media": 1})
    with_gpu = asr_actor_options(settings, 0, gpu=True)
    assert with_gpu["num_gpus"] == 1 and with_gpu["resources"] == {"asr": 1}
    assert asr_actor_options(settings, 0, gpu=False)["num_gpus"] == 0
    media = media_actor_options(settings, 3)
    assert media["resources"] == {"media": 1} and media["num_cpus"] == 1
    assert media["name"] == "clipmaker-media-3" and media["lifetime"] == "detached"
