"""``python -m tsimcne_nb`` is the same as the ``tsimcne-nb`` command."""

from tsimcne_nb.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
