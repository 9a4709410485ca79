"""Evaluation: agreement metrics with length baselines (and, later, policy comparisons)."""
