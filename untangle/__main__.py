from untangle.cli import main

main()
