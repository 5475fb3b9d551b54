"""The synthetic world: deterministic drives in the KITTI raw layout whose images, LiDAR, depth, normals and poses
agree with each other and with the calibration."""
import cv2
import numpy as np
import pytest

from depth_perception.cli import main
from depth_perception.data.kitti import KittiRawDrive, oxts_poses
from depth_perception.data.synth import SynthConfig, SynthScene, drive_name, write_drive
from depth_perception.data.synth.rig import IMU_HEIGHT
from depth_perception.data.synth.textures import SIZE, TextureAtlas
from depth_perception.data.synth.trajectory import EgoMotion, plan_route
from depth_perception.data.synth.world import CYLINDER, SPHERE, build_world
from depth_perception.geometry.projection import backproject, project_points
from depth_perception.geometry.se3 import transform_points

pytestmark = pytest.mark.slow  # not in `make test-fast`

W, H = 414, 125  # a third of KITTI's size in each direction


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    code = main(["synth", "--seed", "7", "--frames", "3", "--out", str(root), "--width", str(W), "--height", str(H),
                 "--normals", "both"])
    assert code == 0
    date, number = drive_name(7)
    return KittiRawDrive(root / date / f"{date}_drive_{number:04d}_sync")


def test_same_seed_gives_identical_frames_and_other_seeds_differ():
    config = SynthConfig(96, 32, normals=(2, 3))
    a = SynthScene.build(5, 2, config).render(1)
    b = SynthScene.build(5, 2, config).render(1)
    c = SynthScene.build(6, 2, config).render(1)
    for cam in (2, 3):
        np.testing.assert_array_equal(a["images"][cam], b["images"][cam])
        np.testing.assert_array_equal(a["groundtruth"][cam], b["groundtruth"][cam])
        np.testing.assert_array_equal(a["normals"][cam], b["normals"][cam])
    np.testing.assert_array_equal(a["velodyne"], b["velodyne"])
    assert np.abs(a["images"][2].astype(int) - c["images"][2].astype(int)).mean() > 5
    assert a["velodyne"].shape != c["velodyne"].shape or not np.array_equal(a["velodyne"], c["velodyne"])


def test_drive_reads_back_through_kitti_raw_drive(drive):
    drive.validate()
    assert drive.num_frames == 3
    assert drive.cameras == (2, 3)
    cam = drive.calib.cam(2)
    assert (cam.width, cam.height) == (W, H)
    assert cam.fx == pytest.approx(721.5377 * W / 1242)
    assert drive.calib.baseline(2, 3) == pytest.approx(0.5327, abs=1e-3)
    image = drive.image(2, 1)
    assert image.shape == (H, W, 3) and image.dtype == np.uint8 and image.std() > 10
    stamps = drive.timestamps(2)
    assert np.allclose(np.diff(stamps), 100_000_000, atol=1_000_000)
    velo = drive.velodyne(0)
    assert velo.shape[1] == 4 and 60_000 < len(velo) <= 64 * 2083  # KITTI's sweeps hold about 120k points
    rng = np.linalg.norm(velo[:, :3], axis=1)
    assert rng.min() > 2.0 and rng.max() < 120.5 and 0 <= velo[:, 3].min() and velo[:, 3].max() <= 1
    # the scanner is 1.73 m above a flat road: the lowest returns lie on it
    assert np.percentile(velo[:, 2], 1) == pytest.approx(-1.73, abs=0.1)
    gt, sparse = drive.groundtruth_depth(2, 0), drive.sparse_depth(3, 0)
    assert gt.shape == sparse.shape == (H, W)
    assert (gt > 0).mean() > 0.5 and 0.01 < (sparse > 0).mean() < 0.9
    normals = drive.normals(3, 2)
    assert normals.shape == (H, W, 3)
    packet = drive.oxts(2)
    assert 0.0 <= np.hypot(packet.vf, packet.vl) < 15.0


def test_camera_poses_file_matches_the_oxts_stream(drive):
    for cam in (2, 3):
        from_file = drive.cam_poses(cam)
        from_oxts = oxts_poses([drive.oxts(i) for i in range(drive.num_frames)]) @ np.linalg.inv(
            drive.calib.T_cam_imu(cam))
        np.testing.assert_allclose(from_file, from_oxts, atol=1e-5)
    # cam3 sits 0.5327 m to the right of cam2 in every frame
    rel = np.linalg.inv(drive.cam_poses(2)) @ drive.cam_poses(3)
    np.testing.assert_allclose(rel[:, :3, 3], np.tile([0.5327, 0, 0], (3, 1)), atol=1e-3)
    # the cameras ride 1.65 m above the road, looking along it
    # (the OXTS origin is the first IMU position, IMU_HEIGHT above the road)
    poses = drive.cam_poses(2)
    assert np.allclose(poses[:, 2, 3] + IMU_HEIGHT, 1.65, atol=0.03)
    assert np.all(np.abs(poses[:, 2, 2]) < 0.03)


def test_lidar_points_land_on_the_ground_truth_depth(drive):
    for i in range(drive.num_frames):
        for cam in (2, 3):
            camera = drive.calib.cam(cam)
            pts = transform_points(drive.calib.T_cam_velo(cam), drive.velodyne(i)[:, :3].astype(np.float64))
            u, v, z = project_points(pts, camera)
            ok = (z > 1) & (u >= 0) & (u <= W - 1) & (v >= 0) & (v <= H - 1)
            gt = drive.groundtruth_depth(cam, i)
            # bilinear ground truth at the exact projection, where the four neighbouring pixels see the same
            # surface (no depth edge, no sky)
            ui, vi = np.floor(u[ok]).astype(int), np.floor(v[ok]).astype(int)
            fu, fv = u[ok] - ui, v[ok] - vi
            ui1, vi1 = np.minimum(ui + 1, W - 1), np.minimum(vi + 1, H - 1)
            quad = np.stack([gt[vi, ui], gt[vi, ui1], gt[vi1, ui], gt[vi1, ui1]])
            gt_at = ((1 - fv) * ((1 - fu) * quad[0] + fu * quad[1]) + fv * ((1 - fu) * quad[2] + fu * quad[3]))
            smooth = (quad.min(0) > 0) & (quad.max(0) < 1.05 * quad.min(0))
            rel = np.abs(gt_at[smooth] - z[ok][smooth]) / z[ok][smooth]
            assert smooth.sum() > 1000
            assert np.median(rel) < 0.01, (i, cam, np.median(rel))
            # and the projected depth maps are those points, nearest first
            sparse = drive.sparse_depth(cam, i)
            m = (sparse > 0) & (gt > 0)
            assert np.median(np.abs(sparse[m] - gt[m]) / gt[m]) < 0.03


def _photometric_error(left: np.ndarray, right: np.ndarray, depth: np.ndarray, depth_right: np.ndarray,
                       fx: float, baseline: float) -> float:
    """Mean absolute grey difference of the left image and the right image warped by disparity fx * B / Z."""
    h, w = depth.shape
    valid = depth > 0
    disp = np.where(valid, fx * baseline / np.maximum(depth, 1e-3), 0).astype(np.float32)
    u, v = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    ur = u - disp
    ok = valid & (ur >= 0) & (ur <= w - 1)
    # visible in the right view too: the right camera's depth at the target agrees
    z_r = depth_right[v.astype(int), np.clip(np.round(ur), 0, w - 1).astype(int)]
    ok &= np.abs(z_r - depth) < 0.05 * depth
    grey_l = cv2.cvtColor(left, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey_r = cv2.cvtColor(right, cv2.COLOR_RGB2GRAY).astype(np.float32)
    warped = cv2.remap(grey_r, ur, v, cv2.INTER_LINEAR)
    return float(np.abs(warped - grey_l)[ok].mean())


def test_right_image_is_the_left_image_shifted_by_ground_truth_disparity(drive):
    fx, baseline = drive.calib.cam(2).fx, drive.calib.baseline(2, 3)
    for i in range(drive.num_frames):
        args = (drive.image(2, i), drive.image(3, i), drive.groundtruth_depth(2, i), drive.groundtruth_depth(3, i), fx)
        right = _photometric_error(*args, baseline)
        assert right < 6.0
        assert _photometric_error(*args, 0.8 * baseline) > 1.5 * right
        assert _photometric_error(*args, 1.25 * baseline) > 1.5 * right


def _temporal_error(drive, i: int, T_next_cur: np.ndarray) -> float:
    """Mean absolute grey difference of frame i and frame i + 1 warped into it with depth and a relative pose."""
    camera = drive.calib.cam(2)
    depth = drive.groundtruth_depth(2, i)
    pts = transform_points(T_next_cur, backproject(depth, camera).reshape(-1, 3).astype(np.float64))
    u, v, z = project_points(pts, camera)
    u, v = (np.nan_to_num(a, nan=-1.0, posinf=-1.0, neginf=-1.0).reshape(H, W).astype(np.float32) for a in (u, v))
    z = z.reshape(H, W)
    ok = (depth > 0) & (u >= 0) & (u <= W - 1) & (v >= 0) & (v <= H - 1) & (z > 0.5)
    z_next = drive.groundtruth_depth(2, i + 1)[np.clip(np.round(v), 0, H - 1).astype(int),
                                               np.clip(np.round(u), 0, W - 1).astype(int)]
    ok &= np.abs(z_next - z) < 0.05 * z  # visible in both frames (moving cars fail this too, mostly)
    grey = [cv2.cvtColor(drive.image(2, k), cv2.COLOR_RGB2GRAY).astype(np.float32) for k in (i, i + 1)]
    warped = cv2.remap(grey[1], u, v, cv2.INTER_LINEAR)
    return float(np.abs(warped - grey[0])[ok].mean())


def test_textures_stay_on_surfaces_from_frame_to_frame(drive):
    poses = drive.cam_poses(2)
    for i in range(drive.num_frames - 1):
        T_next_cur = np.linalg.inv(poses[i + 1]) @ poses[i]
        assert np.linalg.norm(T_next_cur[:3, 3]) > 0.3  # this seed's ego is moving
        right = _temporal_error(drive, i, T_next_cur)
        assert right < 6.0
        assert _temporal_error(drive, i, np.eye(4)) > 2 * right


def test_normals_are_unit_and_agree_with_depth_gradients_on_the_road(drive):
    camera = drive.calib.cam(2)
    for i in range(drive.num_frames):
        n = drive.normals(2, i)
        depth = drive.groundtruth_depth(2, i)
        norm = np.linalg.norm(n, axis=2)
        assert np.allclose(norm[depth > 0], 1.0, atol=2e-3)
        assert np.all(norm[depth == 0] == 0)
        pts = backproject(depth, camera).astype(np.float64)
        du = pts[1:-1, 2:] - pts[1:-1, :-2]
        dv = pts[2:, 1:-1] - pts[:-2, 1:-1]
        n_depth = np.cross(dv, du)
        n_depth /= np.maximum(np.linalg.norm(n_depth, axis=2, keepdims=True), 1e-9)
        n_in = n[1:-1, 1:-1].astype(np.float64)
        # road: normal points up (camera -y) in a 3x3 neighbourhood, nearer than 30 m
        up = (n[..., 1] < -0.99).astype(np.uint8)
        road = cv2.erode(up, np.ones((3, 3), np.uint8))[1:-1, 1:-1].astype(bool) & (depth[1:-1, 1:-1] < 30)
        road &= depth[1:-1, 1:-1] > 0
        assert road.sum() > 2000
        cos = np.abs(np.sum(n_depth * n_in, axis=2))[road]
        assert np.median(np.degrees(np.arccos(np.clip(cos, -1, 1)))) < 1.0
        # and they face the camera
        rays = backproject(np.ones_like(depth), camera)
        facing = np.sum(rays * n, axis=2)[depth > 0]
        assert np.all(facing <= 1e-3)


def test_ego_drives_at_road_speeds_with_turns_and_never_through_objects():
    turned = False
    for seed in (0, 1, 2):
        world = build_world(seed, 60.0)
        t = np.arange(0, 60.0, 0.1)
        x, y, yaw = world.ego.state(t)
        speed = np.hypot(np.diff(x), np.diff(y)) / 0.1
        assert speed.max() < 14.5 and speed.max() > 6.0
        smooth = np.convolve(speed, np.ones(5) / 5, mode="valid")  # over 0.5 s: the route is sampled every 10 cm
        assert np.abs(np.diff(smooth)).max() / 0.1 < 3.0  # gentle acceleration and braking
        assert np.abs(np.diff(yaw)).max() < np.radians(15)
        turned |= np.ptp(yaw) > np.radians(80)
        cam = np.stack([x, y, np.full_like(x, 1.65)], 1)
        for k in range(0, len(t), 5):
            objects = world.objects_at(t[k], (x[k], y[k]), 30.0)
            centre, half = 0.5 * (objects.lo + objects.hi), 0.5 * (objects.hi - objects.lo)
            gap = np.abs(cam[k] - centre) - half  # per axis, < 0 inside the slab
            inside = np.all(gap < 0.3, axis=1)
            radial = np.hypot(*(cam[k, :2] - centre[:, :2]).T)
            cyl = objects.kind == CYLINDER
            inside[cyl] &= radial[cyl] < half[cyl, 0] + 0.3
            ball = np.linalg.norm(cam[k] - centre, axis=1) < half[:, 0] + 0.3
            inside[objects.kind == SPHERE] = ball[objects.kind == SPHERE]
            assert not inside.any(), (seed, t[k])
        # on the road, not on a block
        assert world.grid.on_road(x.astype(np.float32), y.astype(np.float32)).mean() > 0.97
    assert turned


def test_route_stops_come_to_a_standstill():
    world = build_world(3, 1.0)
    grid = world.grid
    for seed in range(10):
        route = plan_route(grid, np.random.default_rng(seed), 600.0)
        if route.stops:
            motion = EgoMotion.drive(route, np.random.default_rng(seed))
            s_stop, dwell = route.stops[0]
            t_stop = motion.t_of_s[np.searchsorted(motion.s_knots, s_stop)]
            x, y, _ = motion.state(np.array([t_stop + 0.2, t_stop + dwell - 0.2]))
            assert np.hypot(x[1] - x[0], y[1] - y[0]) < 0.2
            return
    pytest.fail("no route with a stop in ten seeds")


def test_textures_tile_without_seams_and_blur_with_distance():
    atlas = TextureAtlas.build()
    tex = np.zeros(4, np.int32)
    u = np.array([SIZE - 0.01, SIZE + 0.01, 3 * SIZE - 0.01, 3 * SIZE + 0.01], np.float32)
    s = atlas.sample(tex, u, np.full(4, 100.0, np.float32), np.zeros(4, np.float32))
    assert abs(s[0] - s[1]) < 0.02 and abs(s[2] - s[3]) < 0.02
    rng = np.random.default_rng(0)
    uu, vv = rng.uniform(0, 5000, (2, 2000)).astype(np.float32)
    sharp = atlas.sample(np.zeros(2000, np.int32), uu, vv, np.zeros(2000, np.float32))
    far = atlas.sample(np.zeros(2000, np.int32), uu, vv, np.full(2000, 7.5, np.float32))
    assert sharp.std() > 0.1 and far.std() < 0.3 * sharp.std()
    assert abs(sharp.mean() - 1.0) < 0.1


def test_parallel_workers_write_the_same_drive(tmp_path):
    one = write_drive(tmp_path / "one", 11, 2, SynthConfig(64, 24), workers=1)
    two = write_drive(tmp_path / "two", 11, 2, SynthConfig(64, 24), workers=2)
    a, b = KittiRawDrive(one.path), KittiRawDrive(two.path)
    for i in range(2):
        np.testing.assert_array_equal(a.image(2, i), b.image(2, i))
        np.testing.assert_array_equal(a.velodyne(i), b.velodyne(i))
        np.testing.assert_array_equal(a.groundtruth_depth(3, i), b.groundtruth_depth(3, i))


def test_cli_refuses_bad_arguments_and_existing_drives(tmp_path, capsys):
    assert main(["synth", "--frames", "0", "--out", str(tmp_path)]) == 2
    assert "--frames" in capsys.readouterr().err
    args = ["synth", "--seed", "12", "--frames", "1", "--out", str(tmp_path), "--width", "48", "--height", "16",
            "--no-lidar"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "frames/s" in out
    date, number = drive_name(12)
    written = KittiRawDrive(tmp_path / date / f"{date}_drive_{number:04d}_sync")
    assert written.normals(2, 0) is not None and written.normals(3, 0) is None  # normals of the left camera
    assert not written.has_velodyne and written.sparse_depth(2, 0) is None
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    other = ["synth", "--seed", "13", "--frames", "1", "--out", str(tmp_path), "--width", "64", "--height", "16"]
    assert main(other) == 2
    assert "another --out" in capsys.readouterr().err


def test_an_interrupted_render_leaves_no_partial_drive(tmp_path):
    def stop_after_one(frames, total):
        for k, frame in enumerate(frames):
            if k == 1:
                raise KeyboardInterrupt
            yield frame

    with pytest.raises(KeyboardInterrupt):
        write_drive(tmp_path, 14, 3, SynthConfig(48, 16, lidar=False), progress=stop_after_one)
    date, number = drive_name(14)
    assert not (tmp_path / date / f"{date}_drive_{number:04d}_sync").exists()
    assert [p.name for p in (tmp_path / date).iterdir()] == []


def test_ray_casting_within_object_rectangles_equals_testing_every_ray():
    from depth_perception.data.synth import render as R
    from depth_perception.data.synth.lidar import lidar_rays

    scene = SynthScene.build(4, 30, SynthConfig(160, 48))
    k = 25
    x, y = scene.T_world_imu[k, 0, 3], scene.T_world_imu[k, 1, 3]
    objects = scene.world.objects_at(float(scene.times()[k]), (x, y), 250.0)
    near = np.linalg.norm(0.5 * (objects.lo + objects.hi)[:, :2] - [x, y], axis=1) < 40.0
    objects = objects.subset(near)
    for rays in (R.CameraRays(scene.calib.cam(2), scene.T_world_cam(k, 2)),
                 lidar_rays(scene.T_world_velo(k), azimuths=360)):
        rays.spacing = 0.0  # no culling of thin far objects: compare the rectangles alone
        hits = R.cast_ground(rays, scene.world.grid)
        t_ground = hits.t.copy()
        R.cast_objects(rays, objects, hits)
        brute = t_ground.copy()
        for j in range(len(objects)):
            t = R._intersect(objects.kind[j], objects.lo[j], objects.hi[j], rays.origin, list(rays.inv),
                             list(rays.d), rays.dd)
            np.minimum(brute, t, out=brute)
        assert np.isfinite(hits.t).mean() > 0.5
        np.testing.assert_array_equal(hits.t, brute)
        assert (hits.oid >= 0).sum() > 100
