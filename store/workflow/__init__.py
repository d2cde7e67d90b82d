"""The denial workflow's pure domain rules (shared/STYLE.md: categorize, route, clocks, priority; no I/O)."""
