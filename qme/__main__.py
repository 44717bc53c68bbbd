from qme.cli import launch

launch()
