"""The console's screens, one per module; their styles are in ``console/app.tcss``."""
