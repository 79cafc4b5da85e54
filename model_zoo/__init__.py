"""Recipes that populate model zoos: the networks, embedded datasets and training routines."""
