"""Use cases: the core's decisions applied to storage, the bus and the scheduler."""
