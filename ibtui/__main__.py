"""`python -m ibtui`: the same as the `ibtui` command."""

from ibtui.cli import main

main()
