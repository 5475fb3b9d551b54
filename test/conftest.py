"""Test session setup: isolate DDS traffic and ROS logs, keep torch to the machine's cores."""
import logging
import os
import random
import re
import shutil
import sys
import tempfile

# Set before rclpy is imported anywhere: a random domain per test session, localhost discovery only.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
# Under pytest-xdist the workers inherit the controller's domain: each takes its own next to it, or one worker's
# nodes would hear the other's (TF from a replayed drive, a second node answering under the same name).
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw"):
    os.environ["ROS_DOMAIN_ID"] = str(1 + (int(os.environ["ROS_DOMAIN_ID"]) - 1 + int(_worker[2:])) % 101)
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_LOCALHOST_ONLY", "1") if os.environ.get("ROS_DISTRO") == "humble" else None
_log_dir = tempfile.mkdtemp(prefix="depth_perception_roslog_")
os.environ.setdefault("ROS_LOG_DIR", _log_dir)
os.environ.setdefault("ROS_HOME", _log_dir)
os.environ.setdefault("DEPTH_PERCEPTION_QUIET", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _our_loggers_propagate():
    """The real `launch` (a ROS distro; imported when the launch tests are collected) sets a logger class whose
    loggers never propagate, so every logger created afterwards, ours included, hid its records from caplog.
    Launch's own loggers keep their setting; ours propagate again, and new loggers are plain ones."""
    if "launch" in sys.modules:
        if logging.getLoggerClass() is not logging.Logger:
            logging.setLoggerClass(logging.Logger)
        for name, logger in list(logging.Logger.manager.loggerDict.items()):
            if name.split(".")[0] == "depth_perception" and isinstance(logger, logging.Logger):
                logger.propagate = True
    yield


# A skip is allowed only for one of these reasons: something outside this project that a machine may lack (a ROS
# distro's packages, a GPU). Any other skip, above all one caused by our own code failing to import, fails the
# session (README "Tests").
ALLOWED_SKIPS = (
    r"launch_pytest is not a pip wheel",
    r"launch_ros is not a pip wheel",
    r"could not import 'cv_bridge'",
    r"could not import 'sensor_msgs_py",
    r"needs CUDA",
    r"TensorRT-RTX engines run on RTX-class GPUs only",
    r"an RTX-class GPU is present",
    r"TensorRT is installed here",
    r"could not import .tensorrt.",
)
_bad_skips: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not any(re.search(pattern, reason) for pattern in ALLOWED_SKIPS):
            _bad_skips.append(f"{report.nodeid}: {reason}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _bad_skips:
        terminalreporter.section("skips outside the allow-list (test/conftest.py ALLOWED_SKIPS)", red=True)
        for line in _bad_skips:
            terminalreporter.line(line)


def pytest_sessionfinish(session, exitstatus):
    """Fail a session with a skip outside the allow-list; remove its ROS logs when everything passed."""
    if _bad_skips and exitstatus == 0:
        session.exitstatus = exitstatus = 1
    if exitstatus == 0 and os.environ.get("ROS_LOG_DIR") == _log_dir:
        shutil.rmtree(_log_dir, ignore_errors=True)
