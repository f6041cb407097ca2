from runtime.cli import cli

cli(prog_name="runtime")
