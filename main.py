"""Entry point: ``python main.py --help`` (also installed as the ``broadcaster`` script)."""

try:
    from broadcaster.cli import main
except ModuleNotFoundError as exc:  # typer, pydantic... live in the project's virtualenv
    raise SystemExit(f"broadcaster: {exc}. Run it with .venv/bin/python main.py "
                     "(after `make run` or `make test` created .venv), or activate it: . .venv/bin/activate") from None

if __name__ == "__main__":
    main()
