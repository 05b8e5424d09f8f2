from ibtui.cli import main

main()
