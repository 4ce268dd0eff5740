from sagc.cli import run

run()
