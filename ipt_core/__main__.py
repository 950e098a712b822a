import sys

from ipt_core.cli.main import main

sys.exit(main())
