"""Domain core: pure data and rules, no I/O. Depends on nothing else of vfkeeper's."""
