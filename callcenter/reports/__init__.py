"""Reports (issue 16): the KPI formulas (kpis.py), the 15-minute interval tables and their rebuild."""
