"""Benchmarks: figures printed beside ceilings measured in the same run (``make bench``)."""
