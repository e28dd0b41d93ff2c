"""`python -m labelaudit` runs the command-line interface."""

from labelaudit._console import main

if __name__ == "__main__":
    main()
