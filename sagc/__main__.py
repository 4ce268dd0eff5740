from sagc.cli import main
import sys

sys.exit(main())
