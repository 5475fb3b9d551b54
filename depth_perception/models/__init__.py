"""torch nn.Modules: mono (depth + pose), stereo plane-sweep (+ normals), NLSPN, shared blocks."""
