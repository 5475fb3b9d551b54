"""Test session setup: isolate DDS traffic and ROS logs, keep torch to the machine's cores."""
import logging
import os
import random
import shutil
import sys
import tempfile

# Set before rclpy is imported anywhere: a random domain per test session, localhost discovery only.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_LOCALHOST_ONLY", "1") if os.environ.get("ROS_DISTRO") == "humble" else None
_log_dir = tempfile.mkdtemp(prefix="depth_perception_roslog_")
os.environ.setdefault("ROS_LOG_DIR", _log_dir)
os.environ.setdefault("ROS_HOME", _log_dir)
os.environ.setdefault("DEPTH_PERCEPTION_QUIET", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):  # noqa: ARG001
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


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    """Remove this session's ROS logs when everything passed; keep them to read after a failure."""
    if exitstatus == 0 and os.environ.get("ROS_LOG_DIR") == _log_dir:
        shutil.rmtree(_log_dir, ignore_errors=True)
