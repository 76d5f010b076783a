from mediaguard.cli.main import main

raise SystemExit(main())
