"""`depth-perception demo`: synthetic drive -> rosbag2 -> the three depth nodes over DDS -> report in --out.

Steps (each reused by a second run when its stamp file says the same parameters): synthesize a held-out drive
(seed 1000), convert it with kitti2bag, start the mono, stereo and completion nodes from config/kitti.yaml with
the shipped default engines (stereo and completion fall back to their classical engines where no default
engine ships; mono is then left out), feed them the bag frame by frame and record what they publish, run the
classical baselines offline on the same frames, and write pictures, a bird's-eye view, PLY clouds,
metrics.json and the table printed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import CliError
from ..kinds import KIND_NAMES as KINDS

CLASSICAL_FALLBACK = {"stereo": True, "completion": True, "mono": False}
STAMP = ".demo_stamp.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    parser.add_argument("--frames", type=int, default=20,
                        help="frames to synthesize, or to take from the start of --drive (default 20)")
    parser.add_argument("--seed", type=int, default=1000, help="synthetic drive seed (held-out: >= 1000)")
    parser.add_argument("--width", type=int, default=None, help="synthesize frames this wide (default: synth's)")
    parser.add_argument("--height", type=int, default=None, help="synthesize frames this high (default: synth's)")
    parser.add_argument("--drive", default=None, help="use this KITTI raw drive instead of synthesizing one")
    parser.add_argument("--engines-dir", default=None,
                        help="folder with <kind>_default.onnx + .json (default: the shipped engines)")
    parser.add_argument("--config", default=None, help="node parameter file (default: config/kitti.yaml)")
    parser.add_argument("--rate", type=float, default=None,
                        help="replay with the bag's timing at this rate; default: frame by frame, waiting for "
                             "every node's output, so every frame is processed")
    parser.add_argument("--frame-timeout", type=float, default=120.0,
                        help="seconds to wait for the nodes' outputs of one frame (default 120)")
    for kind in KINDS:
        parser.add_argument(f"--no-{kind}", action="store_true", help=f"leave the {kind} node out")
    parser.add_argument("--no-baselines", action="store_true", help="skip the offline classical baselines")
    parser.add_argument("--force", action="store_true", help="synthesize and convert again even if reusable")


def _say(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def _check(args: argparse.Namespace) -> None:
    if args.frames < 1:
        raise CliError(f"--frames must be >= 1, got {args.frames}")
    if args.rate is not None and not args.rate > 0:
        raise CliError(f"--rate must be > 0, got {args.rate}")
    if args.frame_timeout <= 0:
        raise CliError(f"--frame-timeout must be > 0, got {args.frame_timeout}")
    for name in ("width", "height"):
        value = getattr(args, name)
        if value is not None and value < 16:
            raise CliError(f"--{name} must be >= 16, got {value}")
    if (args.width is None) != (args.height is None):
        raise CliError("--width and --height go together (the synthetic rig keeps its aspect only when told both)")
    if args.drive is not None and not Path(args.drive).is_dir():
        raise CliError(f"--drive {args.drive} is not a folder")
    if args.engines_dir is not None and not Path(args.engines_dir).is_dir():
        raise CliError(f"--engines-dir {args.engines_dir} is not a folder")
    if all(getattr(args, f"no_{k}") for k in KINDS):
        raise CliError("--no-mono, --no-stereo and --no-completion leave nothing to run")


# ------------------------------------------------------------------------------------------ reusable steps


def _read_stamp(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return None


def _write_stamp(folder: Path, stamp: dict[str, Any]) -> None:
    from ..utils import write_json

    write_json(folder / STAMP, stamp)


def _find_drive(root: Path) -> Path | None:
    drives = sorted(p for p in root.glob("*/*_drive_*_sync") if p.is_dir())
    return drives[0] if len(drives) == 1 else None


def _drive_is_valid(drive: Path, frames: int) -> bool:
    from ..data.kitti import KittiRawDrive

    try:
        d = KittiRawDrive(drive)
        d.validate()
        return d.num_frames == frames and {2, 3} <= set(d.cameras) and d.has_velodyne and d.has_oxts
    except (OSError, ValueError):
        return False


def synthesize(root: Path, seed: int, frames: int, width: int | None, height: int | None) -> Path:
    """Render the synthetic drive of `seed` under root (emptied first); returns the drive folder."""
    from ..data.synth import SynthConfig, write_drive
    from ..utils import progress

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    size = {k: v for k, v in (("width", width), ("height", height)) if v is not None}
    summary = write_drive(root, seed, frames, SynthConfig(**size), workers=max(1, min(4, os.cpu_count() or 1)),
                          progress=lambda it, total: progress(it, desc="synth", total=total))
    return Path(summary.path)


def ensure_drive(args: argparse.Namespace, out: Path) -> Path:
    if args.drive is not None:
        return Path(args.drive)
    root = out / "data"
    stamp = {"seed": args.seed, "frames": args.frames, "width": args.width, "height": args.height}
    drive = _find_drive(root) if root.is_dir() else None
    if not args.force and drive is not None and _read_stamp(root) == stamp and _drive_is_valid(drive, args.frames):
        _say(f"reusing the synthetic drive {drive}")
        return drive
    _say(f"synthesizing {args.frames} frames (seed {args.seed}) into {root}")
    t0 = time.monotonic()
    drive = synthesize(root, args.seed, args.frames, args.width, args.height)
    if not _drive_is_valid(drive, args.frames):
        raise CliError(f"synth wrote an incomplete drive: {drive}", 1)
    _write_stamp(root, stamp)
    _say(f"synthesized {drive.name} in {time.monotonic() - t0:.0f} s")
    return drive


def ensure_bag(drive: Path, out: Path, force: bool, frames: int | None = None) -> Path:
    """The drive's first `frames` frames (None: all) as an mcap bag in out/bag/drive; reused while the drive
    and the frame count are unchanged."""
    from ..data.kitti2bag import convert

    folder = out / "bag"
    bag = folder / "drive"
    files = [p for p in drive.rglob("*") if p.is_file()]
    stamp = {"drive": str(drive.resolve()), "files": len(files), "frames": frames,
             "mtime": max((p.stat().st_mtime for p in files), default=0.0)}
    if not force and (bag / "metadata.yaml").is_file() and _read_stamp(folder) == stamp:
        _say(f"reusing the bag {bag}")
        return bag
    _say(f"converting {drive.name} to {bag}")
    summary = convert(drive, bag, storage="mcap", end=frames, overwrite=True)
    _write_stamp(folder, stamp)
    _say(f"wrote {sum(summary.counts.values())} messages")
    return bag


# ------------------------------------------------------------------------------------------------- engines


def _default_engine(kind: str, engines_dir: str | None) -> Path | None:
    name = f"{kind}_default.onnx"
    if engines_dir is not None:
        path = Path(engines_dir) / name
        return path if path.is_file() and path.with_suffix(".json").is_file() else None
    try:
        from ..engines import default_engine_path

        found = default_engine_path(kind)
        if found is not None and Path(found).is_file():
            return Path(found)
    except (ImportError, FileNotFoundError, ValueError):
        pass
    path = Path(__file__).resolve().parents[2] / "engines" / name
    return path if path.is_file() and path.with_suffix(".json").is_file() else None


def choose_engines(args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """{kind: {"engine": parameter value, "label": shown name, "metric": bool}} for the kinds that run; notes."""
    chosen: dict[str, dict[str, Any]] = {}
    notes = []
    for kind in KINDS:
        if getattr(args, f"no_{kind}"):
            continue
        path = _default_engine(kind, args.engines_dir)
        if path is not None:
            try:
                spec = json.loads(path.with_suffix(".json").read_text())
            except (OSError, ValueError):
                spec = {}
            metric = bool(spec.get("metric", False))
            chosen[kind] = {"engine": str(path.resolve()), "label": path.name, "metric": metric}
        elif CLASSICAL_FALLBACK[kind]:
            chosen[kind] = {"engine": "classical", "label": "classical", "metric": True}
            notes.append(f"{kind}: no {kind}_default.onnx shipped; the node runs its classical engine")
        else:
            notes.append(f"{kind}: skipped, no {kind}_default.onnx shipped (mono has no classical engine)")
    return chosen, notes


def _config_path(args: argparse.Namespace) -> Path:
    if args.config is not None:
        path = Path(args.config)
    else:
        path = Path(__file__).resolve().parents[2] / "config" / "kitti.yaml"
        if not path.is_file():
            try:
                from ament_index_python.packages import get_package_share_directory

                path = Path(get_package_share_directory("depth_perception")) / "config" / "kitti.yaml"
            except Exception:  # no ament index outside a ROS install
                pass
    if not path.is_file():
        raise CliError(f"node parameter file not found: {path}")
    return path


# ---------------------------------------------------------------------------------------------------- run


def node_config(config: Path, kinds: set[str], out: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the node-set YAML with the nodes of other kinds disabled (what the demo ran, kept in --out),
    and the name of the node of each kind."""
    import yaml

    from ..utils import atomic_path

    data = yaml.safe_load(config.read_text()) or {}
    nodes = data.get("nodes") or {}
    if not isinstance(nodes, dict):
        raise CliError(f"{config}: 'nodes' must be a mapping of node names")
    names: dict[str, str] = {}
    for name, entry in nodes.items():
        if not isinstance(entry, dict):
            continue
        if entry.get("kind") in kinds and entry.get("kind") not in names and entry.get("enabled", True):
            names[entry["kind"]] = name
        else:
            entry["enabled"] = False
    missing = kinds - set(names)
    if missing:
        raise CliError(f"{config} has no enabled node of kind {', '.join(sorted(missing))}")
    with atomic_path(out) as tmp:
        tmp.write_text(f"# written by depth-perception demo from {config}\n" + yaml.safe_dump(data, sort_keys=False))
    return out, names


def record_nodes(args: argparse.Namespace, bag: Path, engines: dict[str, dict[str, Any]], frames: int) -> Any:
    """Start the nodes with the chosen engines, feed them the bag frame by frame, return the Recording."""
    from ..ros.recorder import record_bag
    from .run import start_nodes

    config, names = node_config(_config_path(args), set(engines), Path(args.out) / "nodes.yaml")
    overrides = {names[k]: {"engine": e["engine"]} for k, e in engines.items()}
    for kind, name in names.items():
        engines[kind]["node"] = name
    # Gated replay sends one frame at a time, so reliable inputs cost nothing and never lose a large image.
    for params in overrides.values():
        params["qos_reliability"] = "reliable"

    def make_nodes(context: Any) -> list[Any]:
        nodes = start_nodes(config, overrides, context=context)
        for node in nodes:
            if hasattr(node, "wait_until_ready") and not node.wait_until_ready(300.0):
                state = node.diagnostic_state()[1] if hasattr(node, "diagnostic_state") else "not ready in 300 s"
                _say(f"{node.get_name()}: no engine: {state}")
        return nodes

    from ..utils import progress

    # The bar advances once per frame: tqdm counts an item as done when the next one is asked for.
    ticks = iter(progress(range(frames), desc="frames through the nodes"))
    next(ticks, None)

    def on_frame(k: int, n: int, ok: bool) -> None:  # the recorder logs frames that timed out
        next(ticks, None)

    def node_info(node: Any) -> dict[str, Any]:
        from ..nodes.runner import node_summary

        return {**node_summary(node), "frame_log": list(getattr(node, "frame_log", []))}

    _say(f"starting {', '.join(names.values())} from {config}; replay "
         + ("frame by frame" if args.rate is None else f"at rate {args.rate}"))
    try:
        return record_bag(bag, make_nodes, list(engines), rate=args.rate, frame_timeout_s=args.frame_timeout,
                          log=_say, on_frame=on_frame, node_info=node_info)
    finally:
        for _ in ticks:  # close the bar
            pass


def node_runs(recording: Any, engines: dict[str, dict[str, Any]]) -> list[Any]:
    """EngineRuns of what each node published, with its engine time per frame from the node's own log."""
    from ..eval.demo_report import EngineRun

    runs = []
    for kind, engine in engines.items():
        info = recording.node_info.get(engine.get("node", ""), {})
        engine_ms_by_stamp = {int(row[0]): float(row[1]) for row in info.get("frame_log", [])}
        # Scored as published: a relative mono engine is the node's to scale (its scale_recovery parameter).
        run = EngineRun(kind, engine["label"], "node")
        if not engine["metric"]:
            run.note = "relative engine, scaled by the node"
        for k, rec in recording.outputs.get(kind, {}).items():
            if rec.depth is None:
                continue
            run.depth[k] = rec.depth
            if rec.points is not None and rec.points_frame_id == rec.frame_id:
                run.points[k] = rec.points
            if rec.stamp_ns in engine_ms_by_stamp:
                run.engine_ms[k] = engine_ms_by_stamp[rec.stamp_ns]
        run.latency_ms.update(recording.latency_ms.get(kind, {}))
        faults = info.get("faults") or {}
        if faults:
            run.note = "; ".join(filter(None, [run.note, "faults: " + ", ".join(f"{c} x{n}"
                                                                                 for c, n in sorted(faults.items()))]))
        runs.append(run)
    return runs


def run(args: argparse.Namespace) -> int:
    _check(args)
    t_start = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    drive = ensure_drive(args, out)
    from ..data.kitti import KittiRawDrive

    n_frames = min(args.frames, KittiRawDrive(drive).num_frames)  # a longer --drive is cut to --frames
    bag = ensure_bag(drive, out, args.force, n_frames)
    engines, notes = choose_engines(args)
    for note in notes:
        _say(note)
    if not engines:
        raise CliError("no engine to run: " + "; ".join(notes))

    from ..eval.demo_report import load_frames, offline_baselines, write_demo_report

    t0 = time.monotonic()
    recording = record_nodes(args, bag, engines, n_frames)
    record_s = time.monotonic() - t0
    if recording.stats.timed_out:
        notes.append(f"frames without every node's output within {args.frame_timeout:.0f} s: "
                     f"{recording.stats.timed_out}")
    for kind in recording.stats.given_up:
        state = recording.node_info.get(engines[kind].get("node", ""), {}).get("state", ("", ""))
        notes.append(f"{kind}: the node published no depth ({' '.join(map(str, state)).strip() or 'no state'})")
    notes.extend(f"recorder: {e}" for e in recording.errors[:5])
    _say(f"nodes done in {record_s:.0f} s; scoring against ground truth")
    frames = load_frames(drive, range(n_frames))
    runs = node_runs(recording, engines)
    if not args.no_baselines:
        runs += offline_baselines(frames, [k for k in ("stereo", "completion") if k in engines], log=_say)
    settings = {"frames": len(frames), "seed": args.seed if args.drive is None else None, "drive": str(drive),
                "bag": str(bag), "rate": args.rate, "engines": {k: e["engine"] for k, e in engines.items()},
                "width": frames[0].camera.width, "height": frames[0].camera.height,
                "record_s": record_s}
    metrics = write_demo_report(out, frames, runs, settings=settings, notes=notes)
    print((out / "table.txt").read_text(), end="")
    _say(f"wrote {out}/ (frames/, bev.png, ply/, metrics.json, table.txt) in {time.monotonic() - t_start:.0f} s")
    return 0 if any(m.get("frames_with_depth") for m in metrics["engines"].values()) else 1
