from trainer.cli import cli

cli(prog_name="trainer")
