"""A depth node as a process of its own (the console executables launch_ros starts): init, spin, and a prompt,
clean exit on SIGINT or SIGTERM even while the engine is busy."""
from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from rclpy.node import Node

from .parameters import ParameterStartupError

SHUTDOWN_WAIT_S = 0.5  # after SIGINT / SIGTERM, how long a node process waits for an engine call to return


SHUTDOWN_DEADLINE_S = 2.0  # and when it leaves whatever the ROS teardown is still doing (launch kills after 5 s)


def _leave(node: Node | None, name: str) -> None:
    """Tear down and leave promptly. An engine call cannot be interrupted and rcl may wait for handles a busy
    thread still uses, so: a short wait for the engine, then either the normal teardown (under a watchdog that ends
    the process at SHUTDOWN_DEADLINE_S) or, with the engine still busy, an immediate exit."""
    import rclpy

    def hard_exit(why: str) -> None:
        print(f"{name}: {why}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(0)

    watchdog = threading.Timer(SHUTDOWN_DEADLINE_S, hard_exit, args=("teardown took too long: leaving now",))
    watchdog.daemon = True
    watchdog.start()
    if node is not None:
        with node._cond:
            node._stop = True
            node._cond.notify_all()
        worker = node._worker
        if worker is not None:
            worker.join(SHUTDOWN_WAIT_S)
        busy = node.busy_threads()
        if busy:
            hard_exit(f"stopping with {', '.join(busy)} still in the engine")
        node.destroy_node(timeout_s=SHUTDOWN_WAIT_S)
    rclpy.try_shutdown()
    watchdog.cancel()


def run_node(node_class: Callable[..., Node], args: Sequence[str] | None = None) -> None:
    """The console entry of a node: init, spin in a multi-threaded executor; SIGINT or SIGTERM stops it within a
    second or two, even in the middle of an engine call (the call is abandoned: the process leaves without it).

    The signals are ours, not rclpy's: the executor spins in short steps and checks for them, so a stop never
    depends on a wait set being woken or on rclpy chaining to the previous handler.
    """
    import signal

    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    from ..ros.dds import init_default_context

    init_default_context(args)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    node = None
    try:
        node = node_class()
        executor = MultiThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ParameterStartupError as exc:
        rclpy.try_shutdown()
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    finally:
        _leave(node, node_class.__name__)
