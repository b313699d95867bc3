"""The Textual console: ``DrConsoleApp`` (app.py), its screens, widgets and styles (app.tcss).

launch.py builds and runs the app for a config; demo.py opens it on a demo fleet; drill_mode.py is
the drill console. What the screens show of runs, triage and incidents comes from console.adapters.
"""
