"""Measured results as pictures and documents.

comparison.py  genlab.compare: evaluate runs side by side, the property table and the verdict
stability.py   training_stability: how steadily a run trained, from its metrics.csv
pictures.py    sample grids, reconstructions, morphs, and the comparison report's pictures
documents.py   the report's files: results.json, report.md, report.html
"""
