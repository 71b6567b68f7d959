"""Scheduler: a pure function of (request, host pools) -> placement + a reason per rejected host."""
