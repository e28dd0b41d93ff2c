"""`python -m labelaudit` runs the command-line interface."""

from labelaudit.cli import main

if __name__ == "__main__":
    main()
