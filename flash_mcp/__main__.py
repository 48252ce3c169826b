from flash_mcp.cli import main

raise SystemExit(main())
