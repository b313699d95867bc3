"""The console's widgets, one per module; their styles are in ``console/tui/app.tcss``."""
