from motiond.cli import main

raise SystemExit(main())
