"""Run directories: config to store to listeners, resume, re-estimation, analysis, reproduction."""
