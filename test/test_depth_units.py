"""The depth-unit rules, one module for all their users (depth_image_proc's depth_traits): metres with NaN, uint16
millimetres and KITTI's x256 with 0 for unknown, and nothing out of range saturated into a wrong depth."""
import numpy as np

from depth_perception.geometry.depth_units import (
    kitti_to_metres,
    metres_to_kitti,
    metres_to_millimetres,
    millimetres_to_metres,
)

DEPTHS = np.array([[np.nan, np.inf, -1.0, 0.0, 0.0004, 0.0006, 1.2345, 65.535, 65.536, 300.0]])


def test_millimetres_round_and_unknown_or_out_of_range_is_zero():
    np.testing.assert_array_equal(metres_to_millimetres(DEPTHS), [[0, 0, 0, 0, 0, 1, 1234, 65535, 0, 0]])
    back = millimetres_to_metres(metres_to_millimetres(DEPTHS))
    assert back.dtype == np.float32 and np.isnan(back[0, :6][[0, 1, 2, 3, 4]]).all()
    np.testing.assert_allclose(back[0, [5, 6, 7]], [0.001, 1.234, 65.535], rtol=1e-6)


def test_kitti_x256_and_the_255_99_m_limit():
    raw = metres_to_kitti(DEPTHS)
    assert raw.dtype == np.uint16 and raw[0, 6] == round(1.2345 * 256)
    np.testing.assert_array_equal(raw[0, [0, 1, 2, 3]], 0)
    assert raw[0, 9] == 0 and metres_to_kitti(np.array([255.99]))[0] == 65533
    np.testing.assert_allclose(kitti_to_metres(raw)[0, 6], round(1.2345 * 256) / 256)
    assert kitti_to_metres(np.zeros(3, np.uint16)).tolist() == [0.0, 0.0, 0.0]  # sparse input: 0 = no measurement


def test_the_ros_message_and_the_kitti_png_use_these_rules(tmp_path):
    from depth_perception.data.kitti import read_depth_png, write_depth_png
    from depth_perception.ros.image import depth_image_to_numpy, depth_to_image, image_to_numpy

    msg = depth_to_image(DEPTHS, "16UC1")
    np.testing.assert_array_equal(image_to_numpy(msg), metres_to_millimetres(DEPTHS))
    np.testing.assert_array_equal(depth_image_to_numpy(msg), millimetres_to_metres(metres_to_millimetres(DEPTHS)))
    write_depth_png(tmp_path / "d.png", DEPTHS)
    np.testing.assert_array_equal(read_depth_png(tmp_path / "d.png"), kitti_to_metres(metres_to_kitti(DEPTHS)))


def test_the_compiled_conversion_gives_numpys_numbers_for_every_dtype_shape_and_edge():
    from depth_perception.geometry import depth_units
    from depth_perception.geometry.compiled import NUMBA

    rng = np.random.default_rng(3)
    values = rng.uniform(-5.0, 300.0, (37, 53))
    values[::5, ::3] = np.nan
    values[1, :6] = [np.inf, -np.inf, 0.0005, 0.0015, 65.5345, 65.5355]  # halves round to even, as np.rint
    for depth in (values, values.astype(np.float32), values.T, values[::2, 1::3], values.astype(np.float16)):
        for scale in (depth_units.MM_PER_M, depth_units.KITTI_SCALE):
            want = np.empty(depth.size, np.uint16)
            depth_units._fixed_point_numpy(np.asarray(depth, np.float64).reshape(-1), scale, want)
            got = depth_units._fixed_point(depth, scale)
            assert got.dtype == np.uint16 and got.shape == depth.shape
            np.testing.assert_array_equal(got.reshape(-1), want)
    # where numba is installed (the pip environment) this was the compiled pass, not the twin again
    assert NUMBA == (depth_units._fixed_point_into is not depth_units._fixed_point_numpy)


def test_masked_values_are_unknown_and_values_that_are_not_depths_are_refused():
    import pytest

    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    np.testing.assert_array_equal(metres_to_millimetres(masked), [1000, 0, 3000])
    for bad in (np.array([1 + 2j]), np.array([True]), np.array(["1.5"]), np.array([1], "datetime64[D]")):
        with pytest.raises(ValueError, match="real numbers in metres"):
            metres_to_kitti(bad)
