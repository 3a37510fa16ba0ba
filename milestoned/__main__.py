from milestoned.cli import main

raise SystemExit(main())
