"""Frozen entry point: the GUI, or the `studio` CLI when the first argument is a sub-command."""

import sys

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "cli":
        from studio.cli.main import main as cli_main

        raise SystemExit(cli_main(sys.argv[2:]))
    from studio.ui.app import main

    raise SystemExit(main())
