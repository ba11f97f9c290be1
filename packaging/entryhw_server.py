"""The frozen ``entryhw-server``: the console script's entry point, nothing else.

PyInstaller runs this file as ``__main__``; everything else comes from the installed
``entryhw`` package (see entryhw-server.spec).
"""

from entryhw.cli import run

if __name__ == "__main__":
    run()
