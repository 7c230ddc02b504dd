"""The simulated user: a crate and a seed, errors by day through the real server, learning by night."""
