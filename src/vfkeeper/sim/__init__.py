"""Simulated hardware for tests and demos: fake sysfs trees shaped on real NICs."""
