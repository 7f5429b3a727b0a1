from bali.cli import main

raise SystemExit(main())
