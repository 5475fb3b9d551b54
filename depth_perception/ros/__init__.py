"""ROS message <-> numpy conversions, QoS profiles, transform buffer, synchronizer, bag replay."""
