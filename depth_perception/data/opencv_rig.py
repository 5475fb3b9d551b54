"""A real stereo rig from OpenCV's sample data: the 13 chessboard pairs `left01.jpg` ... `right14.jpg` that
OpenCV's stereo calibration sample calibrates (640x480, a 9x6 board of 25 mm squares; the square size is the
one OpenCV's own calibration of the left camera, `left_intrinsics.yml`, records).

The rig is calibrated here as that sample does it (corners, `cv2.stereoCalibrate`, `cv2.stereoRectify`), the
rectified projections are written as the sample's `extrinsics.yml` (FileStorage YAML) and read back through
`data.calib_file`, the reader every `infer` command uses; each pair is rectified, and its ground truth is the
board's plane where the board is seen: the board's pose from its corners in the left image (`cv2.solvePnP`),
moved into the rectified left camera. Off the board the truth is unknown (NaN), so a method is scored on the
board alone: a flat, strongly textured target with uniform squares, 0.2-0.45 m from the cameras.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .middlebury import StereoScene

CHESSBOARD = (9, 6)  # inner corners
SQUARE_M = 0.025
PAIRS = ("01", "02", "03", "04", "05", "06", "07", "08", "09", "11", "12", "13", "14")
RIG_FILES = tuple(f"{side}{n}.jpg" for n in PAIRS for side in ("left", "right"))
BOARD_MARGIN_PX = 4  # the truth stops this far inside the board's outer corners (their detection is sub-pixel)


def is_opencv_rig_folder(folder: str | Path) -> bool:
    return all((Path(folder) / n).is_file() for n in RIG_FILES)


def _corners(gray: np.ndarray, name: str) -> np.ndarray:
    import cv2

    found, corners = cv2.findChessboardCorners(gray, CHESSBOARD)
    if not found:
        raise ValueError(f"{name}: no {CHESSBOARD[0]}x{CHESSBOARD[1]} chessboard found")
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 1e-3)
    return cv2.cornerSubPix(gray, corners, (11, 11), (-1, -1), criteria)


def read_opencv_rig(folder: str | Path) -> list[StereoScene]:
    """The rig's 13 pairs, rectified, each with the board's disparity as its truth (NaN off the board). The
    calibration goes through an extrinsics.yml in a temporary folder."""
    import tempfile

    import cv2

    from .calib_file import load_calib_file

    folder = Path(folder)
    missing = [n for n in RIG_FILES if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} does not hold OpenCV's stereo chessboard pairs: missing {missing[:4]}")
    board = np.zeros((CHESSBOARD[0] * CHESSBOARD[1], 3), np.float32)
    board[:, :2] = np.mgrid[0:CHESSBOARD[0], 0:CHESSBOARD[1]].T.reshape(-1, 2) * SQUARE_M
    images, left_corners, right_corners = [], [], []
    for n in PAIRS:
        pair = []
        for side in ("left", "right"):
            img = cv2.imread(str(folder / f"{side}{n}.jpg"), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise ValueError(f"cannot read image {folder / f'{side}{n}.jpg'}")
            pair.append(img)
        if pair[0].shape != pair[1].shape or (images and pair[0].shape != images[0][0].shape):
            raise ValueError(f"{folder}: pair {n} differs in size from the others")
        images.append(pair)
        left_corners.append(_corners(pair[0], f"left{n}.jpg"))
        right_corners.append(_corners(pair[1], f"right{n}.jpg"))
    h, w = images[0][0].shape
    size = (w, h)
    try:
        _, K1, D1, K2, D2, R, T, _, _ = cv2.stereoCalibrate([board] * len(PAIRS), left_corners, right_corners,
                                                            None, None, None, None, size, flags=0)
        R1, R2, P1, P2, _, _, _ = cv2.stereoRectify(K1, D1, K2, D2, size, R, T, alpha=0)
    except cv2.error as exc:
        raise ValueError(f"{folder}: OpenCV could not calibrate the pairs: {' '.join(str(exc).split())}") from None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "extrinsics.yml"
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
        for key, value in (("R", R), ("T", T), ("R1", R1), ("R2", R2), ("P1", P1), ("P2", P2)):
            fs.write(key, value)
        fs.release()
        calib = load_calib_file(path, image_size=size)
    camera, right_camera = calib.camera_for(w, h), calib.right_camera_for(w, h)
    fxb = camera.fx * float(calib.baseline or 0.0)
    maps = [cv2.initUndistortRectifyMap(K, D, Rr, P, size, cv2.CV_32FC1)
            for K, D, Rr, P in ((K1, D1, R1, P1), (K2, D2, R2, P2))]
    ys, xs = np.mgrid[0:h, 0:w]
    rays = np.linalg.inv(camera.K) @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    outer = np.array([0, CHESSBOARD[0] - 1, board.shape[0] - 1, board.shape[0] - CHESSBOARD[0]])
    scenes = []
    for (left, right), corners, n in zip(images, left_corners, PAIRS, strict=True):
        rect = [cv2.cvtColor(cv2.remap(img, *m, cv2.INTER_LINEAR), cv2.COLOR_GRAY2RGB)
                for img, m in zip((left, right), maps, strict=True)]
        _, rvec, tvec = cv2.solvePnP(board, corners, K1, D1)
        R_board = R1 @ cv2.Rodrigues(rvec)[0]
        origin = R1 @ tvec.ravel()
        normal = R_board[:, 2]
        corners_rect = (R_board @ board[outer].T).T + origin
        uv = (camera.K @ corners_rect.T)
        quad = np.round((uv[:2] / uv[2]).T).astype(np.int32)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(mask, quad, 1)
        mask = cv2.erode(mask, np.ones((2 * BOARD_MARGIN_PX + 1,) * 2, np.uint8)).astype(bool)
        depth = ((normal @ origin) / (normal @ rays)).reshape(h, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            disparity = np.where(mask & (depth > 0), fxb / depth - (right_camera.cx - camera.cx), np.nan)
        scenes.append(StereoScene(f"chessboard{n}", rect[0], rect[1], disparity.astype(np.float32), camera,
                                  right_camera, float(calib.baseline or 0.0)))
    return scenes
