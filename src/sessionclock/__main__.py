from sessionclock.cli import main

raise SystemExit(main())
