"""TransformBuffer: chain lookups through a common ancestor, interpolation between stamps, clear errors."""
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depth_perception.geometry.se3 import axis_angle_to_matrix, invert_transform, make_transform
from depth_perception.geometry.transform_buffer import TransformBuffer

S = 1_000_000_000  # one second in ns


def rot_z(deg):
    return axis_angle_to_matrix([0, 0, np.deg2rad(deg)])


def T(deg=0.0, t=(0, 0, 0)):
    return make_transform(rot_z(deg), t)


@pytest.fixture
def car():
    """world -> base_link (moving) -> {velo_link, imu_link}; base_link -> camera (static optical frame)."""
    buf = TransformBuffer(cache_time_s=10.0)
    optical = make_transform(np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]]).T, [0.3, 0, 1.6])
    buf.set_transform(optical, "base_link", "camera", 0, static=True)
    buf.set_transform(T(t=(0.8, 0, 1.7)), "base_link", "velo_link", 0, static=True)
    buf.set_transform(T(t=(-0.1, 0.2, 0.9)), "base_link", "imu_link", 0, static=True)
    buf.set_transform(T(0, (0, 0, 0)), "world", "base_link", 1 * S)
    buf.set_transform(T(90, (10, 0, 0)), "world", "base_link", 3 * S)
    return buf, optical


def test_a_point_in_the_lidar_frame_lands_in_the_camera_frame_by_hand(car):
    buf, _ = car
    # LiDAR point 5 m ahead: in base_link (5.8, 0, 1.7); camera sits at (0.3, 0, 1.6) looking along x, so in the
    # optical frame (z forward, x right, y down) it is (0, -0.1, 5.5).
    T_cam_velo = buf.lookup("camera", "velo_link", 2 * S)
    np.testing.assert_allclose(T_cam_velo @ [5, 0, 0, 1], [0, -0.1, 5.5, 1], atol=1e-12)


def test_sibling_frames_go_up_to_the_common_ancestor_and_down(car):
    buf, _ = car
    np.testing.assert_allclose(buf.lookup("imu_link", "velo_link"), T(t=(0.9, -0.2, 0.8)), atol=1e-12)
    np.testing.assert_allclose(buf.lookup("velo_link", "imu_link"), T(t=(-0.9, 0.2, -0.8)), atol=1e-12)


def test_a_lookup_and_its_reverse_are_inverse(car):
    buf, _ = car
    a = buf.lookup("world", "camera", 2 * S)
    b = buf.lookup("camera", "world", 2 * S)
    np.testing.assert_allclose(a @ b, np.eye(4), atol=1e-12)


def test_between_stamps_rotation_is_slerped_and_translation_lerped(car):
    buf, _ = car
    quarter = buf.lookup("world", "base_link", int(1.5 * S))  # a quarter of the way from 0 deg to 90 deg
    np.testing.assert_allclose(quarter, T(22.5, (2.5, 0, 0)), atol=1e-12)
    np.testing.assert_allclose(buf.lookup("world", "base_link", 3 * S), T(90, (10, 0, 0)), atol=1e-12)


def test_a_chain_through_a_moving_link_interpolates_that_link(car):
    buf, optical = car
    expected = T(45, (5, 0, 0)) @ optical
    np.testing.assert_allclose(buf.lookup("world", "camera", 2 * S), expected, atol=1e-12)


def test_latest_is_the_newest_stamp_the_whole_chain_covers(car):
    buf, _ = car
    np.testing.assert_allclose(buf.lookup("world", "base_link"), T(90, (10, 0, 0)), atol=1e-12)
    np.testing.assert_allclose(buf.lookup("world", "base_link", 0), T(90, (10, 0, 0)), atol=1e-12)
    buf.set_transform(T(t=(1, 1, 1)), "world", "tree", 2 * S)  # a second moving link that ends at 2 s
    buf.set_transform(T(t=(1, 1, 1)), "world", "tree", 1 * S)
    np.testing.assert_allclose(buf.lookup("tree", "base_link"), invert_transform(T(t=(1, 1, 1))) @ T(45, (5, 0, 0)),
                               atol=1e-12)


def test_a_time_outside_the_buffer_is_a_lookup_error_naming_it(car):
    buf, _ = car
    with pytest.raises(LookupError, match=r"time 4000000000 ns is outside.*'world' -> 'base_link'"):
        buf.lookup("camera", "world", 4 * S)
    with pytest.raises(LookupError, match="outside"):
        buf.lookup("camera", "world", S // 2)
    assert not buf.can_transform("camera", "world", 4 * S)
    assert buf.can_transform("camera", "world", 2 * S)


def test_static_links_hold_at_any_time(car):
    buf, _ = car
    assert buf.can_transform("camera", "velo_link", 1000 * S)


def test_unknown_and_unconnected_frames_are_named():
    buf = TransformBuffer()
    buf.set_transform(T(), "a", "b", 0, static=True)
    buf.set_transform(T(), "c", "d", 0, static=True)
    with pytest.raises(LookupError, match="unknown frame 'nowhere'"):
        buf.lookup("a", "nowhere")
    with pytest.raises(LookupError, match="not connected"):
        buf.lookup("a", "d")
    np.testing.assert_array_equal(buf.lookup("b", "b"), np.eye(4))


def test_old_stamps_fall_out_of_the_cache():
    buf = TransformBuffer(cache_time_s=2.0)
    for k in range(6):
        buf.set_transform(T(t=(k, 0, 0)), "odom", "base", k * S)
    assert not buf.can_transform("odom", "base", 2 * S)
    np.testing.assert_allclose(buf.lookup("odom", "base", int(4.5 * S))[:3, 3], [4.5, 0, 0])


def test_bad_transforms_are_refused():
    buf = TransformBuffer()
    buf.set_transform(T(), "a", "b", 0)
    with pytest.raises(ValueError, match="loop"):
        buf.set_transform(T(), "b", "a", 0)
    with pytest.raises(ValueError, match="itself"):
        buf.set_transform(T(), "a", "a", 0)
    with pytest.raises(ValueError, match="4x4"):
        buf.set_transform(np.eye(3), "a", "c", 0)
    with pytest.raises(ValueError, match="cache_time_s"):
        TransformBuffer(cache_time_s=0)


def test_leading_slashes_in_frame_names_are_ignored_as_tf2_does():
    buf = TransformBuffer()
    buf.set_transform(T(t=(1, 2, 3)), "/map", "/odom", 0, static=True)
    np.testing.assert_allclose(buf.lookup("map", "odom")[:3, 3], [1, 2, 3])


@settings(max_examples=50, deadline=None)
@given(angles=st.lists(st.floats(-179, 179), min_size=3, max_size=3),
       shifts=st.lists(st.floats(-5, 5), min_size=9, max_size=9), frac=st.floats(0, 1))
def test_chain_lookups_compose_like_matrices(angles, shifts, frac):
    """world -> a -> b (moving) -> c: the lookup equals the product of the hand-interpolated links."""
    buf = TransformBuffer()
    t_wa, t_ab0, t_bc = T(angles[0], shifts[0:3]), T(0, shifts[3:6]), T(angles[2], shifts[6:9])
    t_ab1 = T(angles[1], shifts[3:6])
    buf.set_transform(t_wa, "world", "a", 0, static=True)
    buf.set_transform(t_ab0, "a", "b", 1 * S)  # stamp 0 means "latest", so the history starts at 1 s
    buf.set_transform(t_ab1, "a", "b", 11 * S)
    buf.set_transform(t_bc, "b", "c", 0, static=True)
    stamp = S + int(frac * 10 * S)
    frac = (stamp - S) / (10 * S)
    t_ab = T(angles[1] * frac, shifts[3:6])  # rotation about z from 0 to angles[1]: slerp is linear in angle
    # se3.quaternion_slerp switches to normalized lerp below 3.6 degrees: up to 1e-6 rad off, times lever arms < 15 m.
    np.testing.assert_allclose(buf.lookup("world", "c", stamp), t_wa @ t_ab @ t_bc, atol=1e-4)
    np.testing.assert_allclose(buf.lookup("c", "world", stamp), invert_transform(t_wa @ t_ab @ t_bc), atol=1e-4)


def test_concurrent_writers_and_readers_do_not_corrupt_the_buffer():
    buf = TransformBuffer(cache_time_s=1000.0)
    buf.set_transform(T(), "world", "base", 0)
    errors = []

    def write():
        for k in range(1, 300):
            buf.set_transform(T(t=(k, 0, 0)), "world", "base", k * S)

    def read():
        for _ in range(300):
            try:
                T_wb = buf.lookup("world", "base")
                assert T_wb[0, 3] == int(T_wb[0, 3])  # "latest" is always an exact stamp, never a torn state
            except AssertionError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    np.testing.assert_allclose(buf.lookup("world", "base")[:3, 3], [299, 0, 0])
