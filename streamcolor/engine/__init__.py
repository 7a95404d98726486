"""Runs source -> batcher -> model -> smoother -> sink in stages joined by bounded queues."""
