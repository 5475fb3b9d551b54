"""KITTI readers and writers, synthetic world, KITTI -> rosbag2."""
