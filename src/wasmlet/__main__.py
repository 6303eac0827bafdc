from wasmlet.cli.main import main

main()
