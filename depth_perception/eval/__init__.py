"""Metrics (Eigen, KITTI depth completion, stereo) and the benchmark harness."""
