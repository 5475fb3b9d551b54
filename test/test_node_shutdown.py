"""A node process stops within about a second of SIGINT or SIGTERM, even in the middle of a long engine call
(launch sends SIGTERM, then SIGKILL, five seconds apart: a node that waited for its frame was killed)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("tf2_msgs.msg")

from depth_perception.geometry import PinholeCamera
from depth_perception.ros.node_driver import (
    STEREO_INPUTS,
    Driver,
    PlaneScene,
    RosSession,
    publish_set,
    stereo_messages,
    topic,
)

pytestmark = pytest.mark.slow  # not in `make test-fast`

ROOT = Path(__file__).resolve().parents[1]
CAMERA = PinholeCamera(1242, 375, 700.0, 700.0, 620.5, 187.0)  # KITTI size: 512 planes take many seconds here


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_node_busy_in_its_engine_stops_within_a_second_of_a_signal(sig, tmp_path):
    ns = f"/shutdown_{sig.name.lower()}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), ROS_LOG_DIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "depth_perception.nodes.stereo_depth_node", "--ros-args", "-r", f"__ns:={ns}",
         "-p", "engine:=classical", "-p", "planes:=512", "-p", "use_sim_time:=true"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with RosSession() as session:
            driver = session.add(Driver(session.context, name=f"shutdown_driver_{sig.name.lower()}"))
            driver.subscribe(topic(ns, "depth"), STEREO_INPUTS["left/image_rect"])  # someone listens: it computes
            assert driver.publisher_ready([topic(ns, k) for k in STEREO_INPUTS],
                                          {topic(ns, k): v for k, v in STEREO_INPUTS.items()}, timeout=60)
            msgs = stereo_messages(PlaneScene(CAMERA, 0.5, 10.0), 1_700_002_000 * 10**9, "cam")
            for _ in range(3):  # best effort: a copy may be lost; a repeated stamp is dropped by the node
                publish_set(driver, ns, msgs)
                time.sleep(0.3)
            time.sleep(2.0)  # the sweep has started and runs for several more seconds
            assert proc.poll() is None
            t0 = time.monotonic()
            proc.send_signal(sig)
            proc.wait(timeout=30)
            elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert elapsed < 1.5, (elapsed, err[-2000:])
    assert proc.returncode == 0, err[-2000:]
    assert "still in the engine" in err  # it was mid-inference, not idle
