"""Entry point: ``python main.py --help`` (also installed as the ``broadcaster`` script)."""

from broadcaster.cli import main

if __name__ == "__main__":
    main()
