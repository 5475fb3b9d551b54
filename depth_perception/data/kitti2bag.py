"""KITTI raw drive -> rosbag2 (mcap or sqlite3), written with rosbags: topics and frames after kitti2bag.

Topics (kitti2bag's names): /kitti/camera_{gray,color}_{left,right}/{image_raw,camera_info} (cameras 0..3),
/kitti/velo/pointcloud (x, y, z, intensity float32, frame velo_link), /kitti/oxts/imu, /kitti/oxts/gps/fix
(frame imu_link), /tf (world -> base_link from OXTS, per OXTS stamp) and /tf_static (base_link -> imu_link
identity, imu_link -> velo_link, imu_link -> each rectified camera's optical frame, from the calibration files).
Header stamps (and bag times) come from the drive's timestamp files. No ROS import: rosbags has its own classes.
"""
from __future__ import annotations

import heapq
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..geometry.se3 import euler_to_matrix, invert_transform, matrix_to_quaternion
from ..utils import progress
from .kitti import COLOR_CAMERAS, KittiRawDrive, OxtsPacket, oxts_poses
from .mcap_checksums import fill_mcap_checksums

CAMERA_FRAMES = {0: "camera_gray_left", 1: "camera_gray_right", 2: "camera_color_left", 3: "camera_color_right"}
WORLD_FRAME, BASE_FRAME, IMU_FRAME, VELO_FRAME = "world", "base_link", "imu_link", "velo_link"
TOPIC_VELO = "/kitti/velo/pointcloud"
TOPIC_IMU = "/kitti/oxts/imu"
TOPIC_GPS = "/kitti/oxts/gps/fix"
TOPIC_TF, TOPIC_TF_STATIC = "/tf", "/tf_static"
STORAGES = ("mcap", "sqlite3")
BAG_VERSION = 8  # v8 metadata keeps offered_qos_profiles as a YAML string, which ROS 2 Humble's rosbag2 reads

TFMESSAGE_MSG = "geometry_msgs/TransformStamped[] transforms\n"


def image_topic(cam: int) -> str:
    return f"/kitti/{CAMERA_FRAMES[cam]}/image_raw"


def camera_info_topic(cam: int) -> str:
    return f"/kitti/{CAMERA_FRAMES[cam]}/camera_info"


def make_typestore():
    """The Kilted typestore, with tf2_msgs/msg/TFMessage registered if a rosbags version lacks it."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    if "tf2_msgs/msg/TFMessage" not in store.types:
        store.register(get_types_from_msg(TFMESSAGE_MSG, "tf2_msgs/msg/TFMessage"))
    return store


class MessageFactory:
    """Builds rosbags message objects (sensor_msgs, tf2_msgs) from KITTI arrays."""

    def __init__(self, store) -> None:
        self.store = store
        self.t = store.types

    def header(self, stamp_ns: int, frame_id: str):
        sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
        return self.t["std_msgs/msg/Header"](stamp=self.t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec),
                                             frame_id=frame_id)

    def image(self, stamp_ns: int, frame_id: str, img: np.ndarray):
        img = np.ascontiguousarray(img)
        if img.dtype != np.uint8 or img.ndim not in (2, 3):
            raise ValueError(f"images must be uint8 (H, W) or (H, W, 3), got {img.dtype} {img.shape}")
        h, w = img.shape[:2]
        channels = 1 if img.ndim == 2 else img.shape[2]
        encoding = {1: "mono8", 3: "rgb8"}[channels]
        return self.t["sensor_msgs/msg/Image"](header=self.header(stamp_ns, frame_id), height=h, width=w,
                                               encoding=encoding, is_bigendian=0, step=w * channels,
                                               data=img.reshape(-1).view(np.uint8))

    def camera_info(self, stamp_ns: int, frame_id: str, calib, cam: int):
        w, h = calib.S_rect[cam]
        K = calib.K.get(cam, calib.P_rect[cam][:, :3])
        D = calib.D.get(cam, np.zeros(5))
        roi = self.t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        return self.t["sensor_msgs/msg/CameraInfo"](
            header=self.header(stamp_ns, frame_id), height=h, width=w, distortion_model="plumb_bob",
            d=np.asarray(D, np.float64).ravel().copy(), k=np.asarray(K, np.float64).ravel().copy(),
            r=np.asarray(calib.R_rect[cam], np.float64).ravel().copy(),
            p=np.asarray(calib.P_rect[cam], np.float64).ravel().copy(), binning_x=0, binning_y=0, roi=roi)

    def pointcloud(self, stamp_ns: int, frame_id: str, points: np.ndarray):
        points = np.ascontiguousarray(points, dtype="<f4")
        if points.ndim != 2 or points.shape[1] != 4:
            raise ValueError(f"velodyne points must be (N, 4), got {points.shape}")
        field_cls = self.t["sensor_msgs/msg/PointField"]
        fields = [field_cls(name=n, offset=4 * k, datatype=field_cls.FLOAT32, count=1)
                  for k, n in enumerate(("x", "y", "z", "intensity"))]
        return self.t["sensor_msgs/msg/PointCloud2"](
            header=self.header(stamp_ns, frame_id), height=1, width=len(points), fields=fields, is_bigendian=False,
            point_step=16, row_step=16 * len(points), data=points.reshape(-1).view(np.uint8), is_dense=True)

    def _vector3(self, x: float, y: float, z: float):
        return self.t["geometry_msgs/msg/Vector3"](x=float(x), y=float(y), z=float(z))

    def _quaternion(self, R: np.ndarray):
        q = matrix_to_quaternion(R)
        return self.t["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])

    def imu(self, stamp_ns: int, frame_id: str, p: OxtsPacket):
        """As kitti2bag: orientation from roll/pitch/yaw, accelerations (af, al, au), rates (wf, wl, wu)."""
        zeros = np.zeros(9)
        return self.t["sensor_msgs/msg/Imu"](
            header=self.header(stamp_ns, frame_id),
            orientation=self._quaternion(euler_to_matrix(p.roll, p.pitch, p.yaw)),
            orientation_covariance=zeros.copy(), angular_velocity=self._vector3(p.wf, p.wl, p.wu),
            angular_velocity_covariance=zeros.copy(), linear_acceleration=self._vector3(p.af, p.al, p.au),
            linear_acceleration_covariance=zeros.copy())

    def navsatfix(self, stamp_ns: int, frame_id: str, p: OxtsPacket):
        status_cls = self.t["sensor_msgs/msg/NavSatStatus"]
        fix_cls = self.t["sensor_msgs/msg/NavSatFix"]
        status = status_cls(status=status_cls.STATUS_FIX, service=status_cls.SERVICE_GPS)
        return fix_cls(header=self.header(stamp_ns, frame_id), status=status, latitude=p.lat, longitude=p.lon,
                       altitude=p.alt, position_covariance=np.zeros(9),
                       position_covariance_type=fix_cls.COVARIANCE_TYPE_UNKNOWN)

    def transform(self, stamp_ns: int, parent: str, child: str, T: np.ndarray):
        tf = self.t["geometry_msgs/msg/Transform"](translation=self._vector3(*T[:3, 3]),
                                                   rotation=self._quaternion(T[:3, :3]))
        return self.t["geometry_msgs/msg/TransformStamped"](header=self.header(stamp_ns, parent), child_frame_id=child,
                                                            transform=tf)

    def tf_message(self, transforms: list):
        return self.t["tf2_msgs/msg/TFMessage"](transforms=transforms)


def static_transforms(drive: KittiRawDrive) -> list[tuple[str, str, np.ndarray]]:
    """(parent, child, T_parent_child): base_link -> imu_link -> velo_link and the rectified cameras."""
    calib = drive.calib
    out = [(BASE_FRAME, IMU_FRAME, np.eye(4)), (IMU_FRAME, VELO_FRAME, invert_transform(calib.T_velo_imu))]
    for cam in drive.cameras:
        out.append((IMU_FRAME, CAMERA_FRAMES[cam], invert_transform(calib.T_cam_imu(cam))))
    return out


@dataclass
class BagSummary:
    path: Path
    storage: str
    frames: int
    counts: dict[str, int] = field(default_factory=dict)


def _qos(transient_local: bool):
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    zero = QosTime(sec=0, nsec=0)
    durability = QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE
    return Qos(history=QosHistory.KEEP_LAST, depth=1 if transient_local else 10,
               reliability=QosReliability.RELIABLE, durability=durability, deadline=zero, lifespan=zero,
               liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=zero,
               avoid_ros_namespace_conventions=False)


def check_drive(drive: KittiRawDrive, start: int, end: int | None) -> tuple[int, int]:
    """Read the calibration, check frame and timestamp counts and the range; returns (start, end)."""
    _ = drive.calib  # FileNotFoundError / ValueError naming the calibration file
    drive.validate()
    n = drive.num_frames
    end = n if end is None else end
    if not (0 <= start < end <= n):
        raise ValueError(f"frame range --start {start} --end {end} is outside the drive's {n} frames")
    if not drive.cameras and not drive.has_velodyne:
        raise ValueError(f"{drive.path}: no camera or velodyne data to convert")
    return start, end


def _frame_messages(drive: KittiRawDrive, make: MessageFactory, i: int, poses: np.ndarray | None,
                    ) -> Iterator[tuple[int, str, str, object]]:
    """(stamp_ns, topic, msgtype, message) for frame i."""
    for cam in drive.cameras:
        stamp = int(drive.timestamps(cam)[i])
        frame = CAMERA_FRAMES[cam]
        img = drive.image(cam, i)
        if cam in COLOR_CAMERAS and img.ndim == 2:
            raise ValueError(f"{drive.path}/image_{cam:02d}/data/{i:010d}.png is grey, expected colour")
        size = drive.calib.S_rect.get(cam)
        if size is not None and (img.shape[1], img.shape[0]) != tuple(size):
            raise ValueError(f"{drive.path}/image_{cam:02d}/data/{i:010d}.png is {img.shape[1]}x{img.shape[0]}, "
                             f"but the calibration's S_rect_0{cam} says {size[0]}x{size[1]}")
        yield stamp, image_topic(cam), "sensor_msgs/msg/Image", make.image(stamp, frame, img)
        yield stamp, camera_info_topic(cam), "sensor_msgs/msg/CameraInfo", make.camera_info(stamp, frame,
                                                                                            drive.calib, cam)
    if drive.has_velodyne:
        stamp = int(drive.timestamps("velodyne_points")[i])
        yield stamp, TOPIC_VELO, "sensor_msgs/msg/PointCloud2", make.pointcloud(stamp, VELO_FRAME, drive.velodyne(i))
    if drive.has_oxts:
        stamp = int(drive.timestamps("oxts")[i])
        p = drive.oxts(i)
        yield stamp, TOPIC_IMU, "sensor_msgs/msg/Imu", make.imu(stamp, IMU_FRAME, p)
        yield stamp, TOPIC_GPS, "sensor_msgs/msg/NavSatFix", make.navsatfix(stamp, IMU_FRAME, p)
        assert poses is not None
        tf = make.transform(stamp, WORLD_FRAME, BASE_FRAME, poses[i])
        yield stamp, TOPIC_TF, "tf2_msgs/msg/TFMessage", make.tf_message([tf])


def _first_stamp(drive: KittiRawDrive, i: int) -> int:
    sensors = [f"image_{c:02d}" for c in drive.cameras] + ["velodyne_points"] * drive.has_velodyne
    sensors += ["oxts"] * drive.has_oxts
    return min(int(drive.timestamps(s)[i]) for s in sensors)


def convert(drive_dir: str | os.PathLike[str], out_bag: str | os.PathLike[str], storage: str = "mcap",
            start: int = 0, end: int | None = None, overwrite: bool = False) -> BagSummary:
    """Write the drive's frames [start, end) to a rosbag2 folder at out_bag; atomically (temp folder + rename)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    out = Path(out_bag)
    if out.exists() and not overwrite:
        raise ValueError(f"output {out} exists already (remove it or pass --overwrite)")
    drive = KittiRawDrive(drive_dir)
    start, end = check_drive(drive, start, end)
    poses = oxts_poses([drive.oxts(i) for i in range(drive.num_frames)]) if drive.has_oxts else None

    store = make_typestore()
    make = MessageFactory(store)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_parent = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    summary = BagSummary(out, storage, end - start)
    try:
        with Writer(tmp_parent / out.name, version=BAG_VERSION, storage_plugin=plugin) as writer:
            conns: dict[str, object] = {}

            def write(stamp: int, topic: str, msgtype: str, msg: object) -> None:
                if topic not in conns:
                    conns[topic] = writer.add_connection(topic, msgtype, typestore=store,
                                                         offered_qos_profiles=[_qos(topic == TOPIC_TF_STATIC)])
                writer.write(conns[topic], stamp, store.serialize_cdr(msg, msgtype))
                summary.counts[topic] = summary.counts.get(topic, 0) + 1

            t0 = _first_stamp(drive, start)
            statics = [make.transform(t0, p, c, T) for p, c, T in static_transforms(drive)]
            write(t0, TOPIC_TF_STATIC, "tf2_msgs/msg/TFMessage", make.tf_message(statics))
            # Sensors of one frame have slightly different stamps; a small heap keeps the bag in time order.
            pending: list[tuple[int, int, str, str, object]] = []
            seq = 0
            for i in progress(range(start, end), desc=f"kitti2bag {drive.name}", total=end - start):
                horizon = _first_stamp(drive, i)
                while pending and pending[0][0] <= horizon:
                    stamp, _, topic, msgtype, msg = heapq.heappop(pending)
                    write(stamp, topic, msgtype, msg)
                for stamp, topic, msgtype, msg in _frame_messages(drive, make, i, poses):
                    heapq.heappush(pending, (stamp, seq, topic, msgtype, msg))
                    seq += 1
            while pending:
                stamp, _, topic, msgtype, msg = heapq.heappop(pending)
                write(stamp, topic, msgtype, msg)
        if storage == "mcap":  # rosbags leaves the CRCs at 0: a damaged bag would replay without a complaint
            for part in (tmp_parent / out.name).glob("*.mcap"):
                fill_mcap_checksums(part)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp_parent / out.name, out)
    finally:
        shutil.rmtree(tmp_parent, ignore_errors=True)
    return summary
