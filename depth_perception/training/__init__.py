"""Datasets, losses, trainer, checkpoints. Never imports ROS."""
