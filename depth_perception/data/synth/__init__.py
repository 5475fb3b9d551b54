"""A procedural driving world rendered on the CPU, written as KITTI raw drives (`depth-perception synth`)."""
from __future__ import annotations

from .drive import SynthConfig, SynthScene, SynthSummary, drive_name, write_drive
from .rig import kitti_calib

__all__ = ["SynthConfig", "SynthScene", "SynthSummary", "drive_name", "kitti_calib", "write_drive"]
