from flexledger.cli import main

main()
