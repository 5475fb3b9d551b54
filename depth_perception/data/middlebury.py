"""Real stereo scenes with ground truth: the Middlebury 2014 layout, and the Motorcycle scene scikit-image ships.

Middlebury 2014 (Scharstein et al., "High-Resolution Stereo Datasets with Subpixel-Accurate Ground Truth",
GCPR 2014), one folder a scene: `im0.png` (left), `im1.png` (right), `calib.txt` (cam0, cam1, doffs, baseline in
mm, width, height, ...) and `disp0.pfm` (left disparity in pixels, inf where unknown). Depth follows
Z = f * B / (d + doffs): the two rectified cameras differ in principal point by doffs = cx1 - cx0.

The Middlebury 2006 scene Aloe, as OpenCV's sample data ships it (`aloeL.jpg`, `aloeR.jpg`, `aloeGT.png`: the left
disparity in full-size pixels as 8-bit integers, 0 where unknown; Debian's and Ubuntu's `opencv-doc` package installs
them in /usr/share/doc/opencv-doc/examples/data), comes without its calibration: its doffs is not shipped, so its
depth is known only up to that offset. It is read with doffs 0 (`calibrated` False): depth f B / d, whose ratios are
the disparity's, so AbsRel and delta still score the disparity honestly but RMSE in metres does not exist. f and B
are the Middlebury 2005/2006 rig's (3740 px at full size, 160 mm); with doffs 0 they only scale every depth alike.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..geometry.camera import PinholeCamera
from .calib_file import is_middlebury_calib, load_calib_file

# The published calibration of Motorcycle (full size 2964x2000: f 3979.911, cx0 1244.772, cy 1019.507,
# doffs 124.343, baseline 193.001 mm), at the quarter size skimage.data.stereo_motorcycle() ships.
MOTORCYCLE_QUARTER = {"f": 994.978, "cx0": 311.193, "cy": 254.877, "doffs": 31.086, "baseline_mm": 193.001}
MIDDLEBURY_2006_RIG = {"f_full": 3740.0, "baseline_mm": 160.0}
ALOE_FILES = ("aloeL.jpg", "aloeR.jpg", "aloeGT.png")


@dataclass(frozen=True)
class StereoScene:
    """A rectified pair with its left disparity and calibration; `depth` follows from them."""

    name: str
    left: np.ndarray  # (H, W, 3) uint8 RGB
    right: np.ndarray
    disparity: np.ndarray  # (H, W) float32 pixels, NaN where unknown
    camera: PinholeCamera  # left
    right_camera: PinholeCamera
    baseline: float  # metres
    calibrated: bool = True  # False: doffs unknown (taken as 0), depth only up to it (RMSE in metres not defined)

    @property
    def doffs(self) -> float:
        return self.right_camera.cx - self.camera.cx

    @property
    def depth(self) -> np.ndarray:
        """Metres, NaN where the disparity is unknown."""
        return self.depth_from_disparity(self.disparity)

    def depth_from_disparity(self, disparity: np.ndarray) -> np.ndarray:
        """Depth (m) of a Middlebury disparity map: f B / (d + doffs); NaN where unknown or not in front."""
        with np.errstate(divide="ignore", invalid="ignore"):
            z = self.camera.fx * self.baseline / (np.asarray(disparity) + self.doffs)
        return np.where(np.isfinite(z) & (z > 0), z, np.nan).astype(np.float32)

    def disparity_from_depth(self, depth: np.ndarray) -> np.ndarray:
        """Middlebury disparity (x_left - x_right) of a depth map: f B / Z - doffs."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.camera.fx * self.baseline / np.asarray(depth, np.float64) - self.doffs).astype(np.float32)

    def calib_txt(self) -> str:
        """This scene's calibration as a Middlebury calib.txt."""
        c, r = self.camera, self.right_camera
        return (f"cam0=[{c.fx} 0 {c.cx}; 0 {c.fy} {c.cy}; 0 0 1]\ncam1=[{r.fx} 0 {r.cx}; 0 {r.fy} {r.cy}; 0 0 1]\n"
                f"doffs={self.doffs}\nbaseline={self.baseline * 1000.0}\nwidth={c.width}\nheight={c.height}\n")

    def kitti_calib_txt(self) -> str:
        """The same calibration as a KITTI calib_cam_to_cam.txt with P_rect_02 / P_rect_03 (each its own K)."""
        c, r = self.camera, self.right_camera
        p2 = [c.fx, 0, c.cx, 0, 0, c.fy, c.cy, 0, 0, 0, 1, 0]
        p3 = [r.fx, 0, r.cx, -r.fx * self.baseline, 0, r.fy, r.cy, 0, 0, 0, 1, 0]
        size = f"{float(c.width):e} {float(c.height):e}"
        return (f"S_rect_02: {size}\nP_rect_02: {' '.join(f'{v:e}' for v in p2)}\n"
                f"S_rect_03: {size}\nP_rect_03: {' '.join(f'{v:e}' for v in p3)}\n")


def read_pfm(path: str | Path) -> np.ndarray:
    """A PFM image (Pf: one channel, PF: three) as float32, top row first; ValueError naming what is wrong."""
    path = Path(path)
    with open(path, "rb") as f:
        header = f.readline().strip()
        if header not in (b"Pf", b"PF"):
            raise ValueError(f"{path}: not a PFM file (header {header[:8]!r})")
        dims = re.match(rb"^\s*(\d+)\s+(\d+)\s*$", f.readline())
        if dims is None:
            raise ValueError(f"{path}: bad PFM size line")
        width, height = int(dims.group(1)), int(dims.group(2))
        try:
            scale = float(f.readline().strip())
        except ValueError:
            raise ValueError(f"{path}: bad PFM scale line") from None
        channels = 3 if header == b"PF" else 1
        data = np.frombuffer(f.read(), dtype="<f4" if scale < 0 else ">f4")
    if data.size != width * height * channels:
        raise ValueError(f"{path}: PFM holds {data.size} values, its header says {width}x{height}x{channels}")
    img = data.reshape(height, width, channels) if channels == 3 else data.reshape(height, width)
    return np.flipud(img).astype(np.float32)  # PFM rows run bottom to top


def write_pfm(path: str | Path, image: np.ndarray) -> None:
    image = np.asarray(image, np.float32)
    header = b"PF\n" if image.ndim == 3 else b"Pf\n"
    with open(path, "wb") as f:
        f.write(header + f"{image.shape[1]} {image.shape[0]}\n-1.0\n".encode())
        f.write(np.flipud(image).astype("<f4").tobytes())


def read_middlebury_scene(folder: str | Path) -> StereoScene:
    """A Middlebury 2014 scene folder (im0.png, im1.png, calib.txt, disp0.pfm)."""
    import cv2

    folder = Path(folder)
    missing = [n for n in ("im0.png", "im1.png", "calib.txt", "disp0.pfm") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a Middlebury scene: missing {missing}")
    images = []
    for name in ("im0.png", "im1.png"):
        img = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"cannot read image {folder / name}")
        images.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    disp = read_pfm(folder / "disp0.pfm")
    if disp.ndim != 2:
        raise ValueError(f"{folder / 'disp0.pfm'} has {disp.shape[2]} channels: a disparity map has one")
    text = (folder / "calib.txt").read_text(errors="replace")
    if not is_middlebury_calib(text):
        raise ValueError(f"{folder / 'calib.txt'} is not a Middlebury calib.txt: it needs cam0=[...], cam1=[...], "
                         "baseline, width and height lines")
    calib = load_calib_file(folder / "calib.txt")
    h, w = images[0].shape[:2]
    if images[1].shape[:2] != (h, w) or disp.shape != (h, w):
        raise ValueError(f"{folder}: im0 {images[0].shape[:2]}, im1 {images[1].shape[:2]} and disp0 {disp.shape} "
                         "differ in size")
    camera, right = calib.camera_for(w, h), calib.right_camera_for(w, h)
    disp = np.where(np.isfinite(disp) & (disp > 0), disp, np.nan).astype(np.float32)
    return StereoScene(folder.name, images[0], images[1], disp, camera, right, float(calib.baseline or 0.0))


def motorcycle_scene() -> StereoScene:
    """Middlebury 2014 Motorcycle at quarter size (741x500), from the scikit-image wheel, with its calibration."""
    import skimage.data

    left, right, disp = skimage.data.stereo_motorcycle()
    h, w = left.shape[:2]
    m = MOTORCYCLE_QUARTER
    camera = PinholeCamera(w, h, m["f"], m["f"], m["cx0"], m["cy"])
    right_camera = PinholeCamera(w, h, m["f"], m["f"], m["cx0"] + m["doffs"], m["cy"])
    disp = np.where(np.isfinite(disp) & (disp > 0), disp, np.nan).astype(np.float32)
    return StereoScene("motorcycle", np.ascontiguousarray(left), np.ascontiguousarray(right), disp, camera,
                       right_camera, m["baseline_mm"] / 1000.0)


def is_opencv_aloe_folder(folder: str | Path) -> bool:
    return all((Path(folder) / n).is_file() for n in ALOE_FILES)


def read_opencv_aloe(folder: str | Path) -> StereoScene:
    """Middlebury 2006 Aloe from OpenCV's sample data (aloeL.jpg, aloeR.jpg, aloeGT.png), full size: uncalibrated
    (doffs unknown, read as 0), f = 3740 px and B = 160 mm, principal point at the image centre."""
    import cv2

    folder = Path(folder)
    missing = [n for n in ALOE_FILES if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} does not hold OpenCV's Aloe sample: missing {missing}")
    images = []
    for name in ALOE_FILES[:2]:
        img = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"cannot read image {folder / name}")
        images.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    gt = cv2.imread(str(folder / ALOE_FILES[2]), cv2.IMREAD_UNCHANGED)
    if gt is None or gt.ndim != 2 or gt.dtype != np.uint8:
        what = "unreadable" if gt is None else f"{gt.dtype} with shape {gt.shape}"
        raise ValueError(f"{folder / ALOE_FILES[2]}: a disparity map here is one 8-bit channel, got {what}")
    h, w = images[0].shape[:2]
    if images[1].shape[:2] != (h, w) or gt.shape != (h, w):
        raise ValueError(f"{folder}: {ALOE_FILES[0]} {images[0].shape[:2]}, {ALOE_FILES[1]} {images[1].shape[:2]} "
                         f"and {ALOE_FILES[2]} {gt.shape} differ in size")
    f = MIDDLEBURY_2006_RIG["f_full"]
    camera = PinholeCamera(w, h, f, f, (w - 1) / 2.0, (h - 1) / 2.0)
    disp = np.where(gt > 0, gt, np.nan).astype(np.float32)
    return StereoScene("aloe", images[0], images[1], disp, camera, camera,
                       MIDDLEBURY_2006_RIG["baseline_mm"] / 1000.0, calibrated=False)
