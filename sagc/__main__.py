import sys

from sagc.cli import main

sys.exit(main())
