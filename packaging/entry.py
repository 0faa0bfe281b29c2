"""Entry point of the frozen `sesam-tls` executable (PyInstaller).

The same as the `sesam-tls` console script: everything lives in the package.
"""

from sesam_tls.cli import run

if __name__ == "__main__":
    run()
