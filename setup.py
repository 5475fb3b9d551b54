"""ament_python package: `colcon build` in a ROS 2 workspace, or `pip install -e .` in the pip venv."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "depth_perception"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
        (f"share/{PACKAGE}/engines", glob("engines/*")),
    ],
    package_data={PACKAGE: ["engines/tensorrt_onnx_ops.txt"]},
    install_requires=["setuptools", "numpy", "pyyaml"],
    # optional engine runtimes; ROS installs get them through package.xml / pip (README)
    extras_require={"tensorrt-rtx": ["tensorrt-rtx-cu12"], "onnx": ["onnxruntime", "onnx"]},
    zip_safe=True,
    maintainer="depth_perception maintainers",
    maintainer_email="depth-perception@example.com",
    description="Dense depth for ROS 2: monocular, plane-sweep stereo and NLSPN completion engines.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "depth-perception = depth_perception.cli:main",
            "mono_depth_node = depth_perception.nodes.mono_depth_node:main",
            "stereo_depth_node = depth_perception.nodes.stereo_depth_node:main",
            "depth_completion_node = depth_perception.nodes.depth_completion_node:main",
        ],
    },
)
