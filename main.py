"""Entry point: ``python main.py --help`` (also installed as the ``broadcaster`` script)."""

from broadcaster.entry import main

if __name__ == "__main__":
    try:
        main()
    except ModuleNotFoundError as exc:  # typer, pydantic... live in the project's virtualenv
        raise SystemExit(f"broadcaster: {exc}. Run it with .venv/bin/python main.py "
                         "(after `make run` or `make test` created .venv), or activate it: "
                         ". .venv/bin/activate") from None
