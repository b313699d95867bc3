"""The console's screens, one per module; their styles are in ``console/tui/app.tcss``."""
