"""Container runtimes behind one CRI-shaped interface: Docker (real) and simulated (kwok-like)."""
