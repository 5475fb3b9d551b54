"""rclpy nodes: subscriptions, QoS, parameters, sync, TF, publishing. Thin: no numerics."""
