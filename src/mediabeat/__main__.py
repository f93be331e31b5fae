from mediabeat.cli import main

main()
