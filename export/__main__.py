from export.cli import cli

cli(prog_name="python -m export")
