"""``python -m tsimcne_nb.data.synthetic``: write the contact sheet, time the generator."""

from tsimcne_nb.data.synthetic.generator import _main

_main()
