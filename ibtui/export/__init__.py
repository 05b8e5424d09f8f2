"""Figures of a run directory, drawn with matplotlib (Figure API and the Agg canvas only).

Kept out of the engine, estimators, data and runs packages so that the science imports no plotting library; import
ibtui.export.png where figures are wanted.
"""
