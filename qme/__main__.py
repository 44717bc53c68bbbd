from qme.cli import main

raise SystemExit(main())
