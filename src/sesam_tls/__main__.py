from sesam_tls.cli import run

run()
