"""Measured results as pictures and documents: sample pictures, the side-by-side comparison report."""
