from ur_engine.cli.main import main

main()
