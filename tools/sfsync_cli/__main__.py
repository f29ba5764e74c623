from sfsync_cli.app import main

main()
